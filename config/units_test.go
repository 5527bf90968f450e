package config

import (
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func TestByteSizeParse(t *testing.T) {
	tests := []struct {
		name    string
		in      any // what TOML hands UnmarshalTOML
		want    ByteSize
		wantErr string
	}{
		{"integer bytes", int64(4096), 4096, ""},
		{"zero", int64(0), 0, ""},
		{"plain number string", "1024", 1024, ""},
		{"KiB", "4KiB", 4 << 10, ""},
		{"MiB", "256MiB", 256 << 20, ""},
		{"GiB", "2GiB", 2 << 30, ""},
		{"TiB", "1TiB", 1 << 40, ""},
		{"KB", "4KB", 4000, ""},
		{"MB with space", "8 MB", 8_000_000, ""},
		{"GB", "1GB", 1_000_000_000, ""},
		{"bytes unit", "512B", 512, ""},
		{"lower case", "16mib", 16 << 20, ""},
		{"surrounding space", "  3 KiB ", 3 << 10, ""},
		{"negative integer", int64(-1), 0, "a size cannot be negative"},
		{"negative string", "-5MiB", 0, "a size cannot be negative"},
		{"fraction", "1.5GiB", 0, `"1536MiB" rather than "1.5GiB"`},
		{"unknown unit", "12XB", 0, `unknown unit "XB"`},
		{"garbage", "lots", 0, "not a size"},
		{"empty", "", 0, "not a size"},
		{"overflow by unit", "9000000TiB", 0, "size too large"},
		{"overflow of number", "99999999999999999999", 0, "number too large"},
		{"bool", true, 0, "wrong type: got boolean true, want a size"},
		{"float", 1.5, 0, "wrong type: got float 1.5"},
		{"array", []any{int64(1)}, 0, "wrong type: got array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b ByteSize
			err := b.UnmarshalTOML(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("UnmarshalTOML(%#v) = %v, want error containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || b != tt.want {
				t.Fatalf("UnmarshalTOML(%#v) = %d, %v; want %d", tt.in, b, err, tt.want)
			}
		})
	}
}

func TestByteSizeString(t *testing.T) {
	tests := []struct {
		in   ByteSize
		want string
	}{
		{0, "0"}, {1, "1"}, {4097, "4097"}, {4 * KiB, "4KiB"}, {256 * MiB, "256MiB"}, {1536 * MiB, "1536MiB"},
		{3 * GiB, "3GiB"}, {1 << 40, "1TiB"}, {1000, "1KB"}, {8_000_000, "8MB"}, {-5, "-5"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.in.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if tt.in < 0 {
				return
			}
			var back ByteSize
			if err := back.UnmarshalText([]byte(tt.in.String())); err != nil || back != tt.in {
				t.Errorf("UnmarshalText(%q) = %d, %v; want %d", tt.in.String(), back, err, tt.in)
			}
		})
	}
}

func TestDurationParse(t *testing.T) {
	tests := []struct {
		name    string
		in      any
		want    time.Duration
		wantErr string
	}{
		{"seconds", "10s", 10 * time.Second, ""},
		{"compound", "1m30s", 90 * time.Second, ""},
		{"micro ascii", "10us", 10 * time.Microsecond, ""},
		{"micro sign", "10µs", 10 * time.Microsecond, ""},
		{"zero", "0", 0, ""},
		{"zero seconds", "0s", 0, ""},
		{"hours", "2h", 2 * time.Hour, ""},
		{"negative", "-1s", 0, "a duration cannot be negative"},
		{"no unit", "5", 0, "not a duration"},
		{"garbage", "soon", 0, "not a duration"},
		{"empty", "", 0, "empty duration"},
		{"integer", int64(5), 0, "wrong type: got integer 5, want a duration string"},
		{"bool", false, 0, "wrong type: got boolean false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Duration
			err := d.UnmarshalTOML(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("UnmarshalTOML(%#v) = %v, want error containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || d.Duration != tt.want {
				t.Fatalf("UnmarshalTOML(%#v) = %v, %v; want %v", tt.in, d.Duration, err, tt.want)
			}
		})
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"}, {time.Second, "1s"}, {time.Minute, "1m"}, {90 * time.Second, "1m30s"},
		{time.Hour + 30*time.Minute, "1h30m"}, {25 * time.Hour, "25h"}, {500 * time.Millisecond, "500ms"},
		{10 * time.Microsecond, "10us"}, {1500 * time.Nanosecond, "1500ns"}, {1500 * time.Millisecond, "1.5s"},
		{-time.Minute, "-1m"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := D(tt.in).String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			back, err := time.ParseDuration(tt.want)
			if err != nil || back != tt.in {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.want, back, err, tt.in)
			}
		})
	}
}

// The types also work with the TOML library directly, for other packages' files (collector config).
func TestUnitsWithTOMLLibrary(t *testing.T) {
	type doc struct {
		Size  ByteSize `toml:"size"`
		Bytes ByteSize `toml:"bytes"`
		Every Duration `toml:"every"`
	}
	var d doc
	if _, err := toml.Decode("size = \"2MiB\"\nbytes = 10\nevery = \"1m\"\n", &d); err != nil {
		t.Fatal(err)
	}
	if d.Size != 2*MiB || d.Bytes != 10 || d.Every.Duration != time.Minute {
		t.Fatalf("decoded %+v", d)
	}
	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(d); err != nil {
		t.Fatal(err)
	}
	if want := "size = \"2MiB\"\nbytes = \"10\"\nevery = \"1m\"\n"; b.String() != want {
		t.Errorf("encoded %q, want %q", b.String(), want)
	}
	if _, err := toml.Decode("every = \"-1s\"\n", &d); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative duration through the library: %v", err)
	}
}
