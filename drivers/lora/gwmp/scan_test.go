package gwmp

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

// pushCorpus returns the PUSH_DATA bodies in testdata/push_data.txt.
func pushCorpus(tb testing.TB) [][]byte {
	tb.Helper()
	b, err := os.ReadFile("testdata/push_data.txt")
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for i, block := range strings.Split(string(b), "\n----\n") {
		if i > 0 { // the first block is the file's comment
			out = append(out, []byte(block))
		}
	}
	if len(out) < 20 {
		tb.Fatalf("%d bodies in testdata/push_data.txt", len(out))
	}
	return out
}

// jsonPush is what encoding/json makes of a body, the reference.
func jsonPush(body []byte) (PushBody, error) {
	var pb PushBody
	err := json.Unmarshal(body, &pb)
	return pb, err
}

// agree fails t unless the scanner's PushBody equals encoding/json's.
func agree(t *testing.T, body []byte) (scanned bool) {
	t.Helper()
	got, ok := scanPush(body)
	want, err := jsonPush(body)
	if !ok {
		return false
	}
	if err != nil || want.Invalid != nil || want.StatErr != nil || want.Stat != nil {
		t.Fatalf("scanned %q, which encoding/json decodes with err %v, invalid %v, stat %v", body, err, want.Invalid, want.StatErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("scan of %q:\n%s\nencoding/json:\n%s", body, dump(got), dump(want))
	}
	return true
}

func dump(pb PushBody) string {
	var b strings.Builder
	for _, r := range pb.RXPK {
		v := reflect.ValueOf(r)
		for i := range v.NumField() {
			f := v.Field(i)
			if f.Kind() == reflect.Pointer && !f.IsNil() {
				f = f.Elem()
			}
			fmt.Fprintf(&b, "%s=%v ", v.Type().Field(i).Name, f)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestScanPushCorpus(t *testing.T) {
	var scanned int
	for _, body := range pushCorpus(t) {
		if agree(t, body) {
			scanned++
		}
		// Whatever path it takes, Decode gives encoding/json's answer.
		got, gerr := decodePush(body)
		want, werr := jsonPush(body)
		if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("decodePush(%q) = %v, %v; encoding/json %v, %v", body, got, gerr, want, werr)
		}
	}
	// The forwarders' everyday shapes take the fast path: the PROTOCOL.TXT
	// example, sx1302_hal's, and the bench's.
	if scanned < 7 {
		t.Errorf("only %d corpus bodies scanned", scanned)
	}
	for _, body := range []string{
		`{"rxpk":[{"tmst":1000,"chan":2,"rfch":0,"freq":868.500000,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","rssi":-57,"lsnr":9.2,"size":24,"data":"AAAAAAAAAAEAAAAAAAAAAAAAAAAAAAAA"}]}`,
		`{"rxpk":[{"jver":1,"tmst":55474803,"chan":2,"rfch":0,"freq":866.349812,"mid":8,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","rssis":-53,"lsnr":9.8,"foff":-166,"rssi":-53,"size":18,"data":"QOQ3KwYAAAABa7rxPmUb/Dk="}]}`,
	} {
		if !agree(t, []byte(body)) {
			t.Errorf("not scanned: %s", body)
		}
	}
}

// FuzzScanPush: every body the scanner accepts, encoding/json decodes to the
// same PushBody.
func FuzzScanPush(f *testing.F) {
	for _, body := range pushCorpus(f) {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) { agree(t, body) })
}

func BenchmarkDecodePush(b *testing.B) {
	body := []byte(`{"rxpk":[{"tmst":1000,"chan":2,"rfch":0,"freq":868.500000,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","rssi":-57,"lsnr":9.2,"size":24,"data":"AAAAAAAAAAEAAAAAAAAAAAAAAAAAAAAA"}]}`)
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			scanPush(body)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			jsonPush(body)
		}
	})
}
