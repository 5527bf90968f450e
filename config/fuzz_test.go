package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(DefaultTOML()))
	f.Add([]byte(uncommentExamples(DefaultTOML())))
	f.Add([]byte("version = 1\n[store]\nmax_byte = 1\n"))
	f.Add([]byte("version = 1\n[[drivers.sim]]\nname = \"a\"\nkind = \"lora\"\n[[drivers.sim]]\nname = \"a\"\nintervall = 5\n"))
	f.Add([]byte("version = 1\n[[drivers.lora]]\nname = \"h\"\nupstreams = []\n"))
	f.Add([]byte("version = 1\n[[drivers.lora]]\nname = \"h\"\ngateways = [\"AA555A0000000001\"]\n[[drivers.lora.upstreams]]\naddr = \"ns:1700\"\nuplink_only = true\n"))
	f.Add([]byte("version = 2\n"))
	f.Add([]byte("[store]\nmax_bytes = \"-1MiB\"\n"))
	f.Add([]byte("version = 1\nuplinks = { file = { rotate_bytes = \"1.5GiB\" } }\n"))
	f.Add([]byte("\x7fELF\x02\x01"))
	f.Add([]byte(DefaultTOML()[:100]))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Fatal("config returned with an error")
			}
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrMissing) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			forEachProblem(err, func(e *KeyError) {
				if !strings.HasPrefix(e.Error(), "config: ") {
					t.Fatalf("unprefixed: %q", e.Error())
				}
			})
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
		var b strings.Builder
		if err := c.Encode(&b); err != nil {
			t.Fatal(err)
		}
		back, err := Parse([]byte(b.String()))
		if err != nil {
			t.Fatalf("re-parse of encoded config: %v\n%s", err, b.String())
		}
		if !reflect.DeepEqual(*back, *c) {
			t.Fatalf("encode round trip differs:\n%+v\n%+v", *back, *c)
		}
	})
}
