package attest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// knownAnswerRecords are the signed records kept in testdata, every kind
// and both envelopes (plain and session).
func knownAnswerRecords(tb testing.TB) map[string][]byte {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "*.cose.hex"))
	if err != nil || len(names) < 10 {
		tb.Fatalf("known-answer records: %v (%d files)", err, len(names))
	}
	out := map[string][]byte{}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(name)] = mustHex(tb, strings.TrimSpace(string(b)))
	}
	return out
}

func TestPeekKindKnownAnswers(t *testing.T) {
	for name, raw := range knownAnswerRecords(t) {
		r, err := Decode(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if k, ok := PeekKind(raw); !ok || k != r.Claims.Kind {
			t.Errorf("%s: PeekKind = %q, %v; Decode's kind %q", name, k, ok, r.Claims.Kind)
		}
		// Cut anywhere, a record no longer peeks.
		for i := range raw {
			if k, ok := PeekKind(raw[:i]); ok && i < len(raw)-64-2 {
				t.Errorf("%s cut at %d of %d peeks as %q", name, i, len(raw), k)
			}
		}
	}
	for _, bad := range [][]byte{nil, {0xd2}, {0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40}, []byte("not cose")} {
		if k, ok := PeekKind(bad); ok {
			t.Errorf("PeekKind(%x) = %q, want not ok", bad, k)
		}
	}
}

// FuzzPeekKind: whatever Decode accepts, PeekKind names the same kind.
func FuzzPeekKind(f *testing.F) {
	for _, raw := range seedRecords(f) {
		f.Add(raw)
	}
	for _, raw := range knownAnswerRecords(f) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		k, ok := PeekKind(raw)
		r, err := Decode(raw)
		if err != nil {
			return
		}
		if !ok || k != r.Claims.Kind {
			t.Fatalf("PeekKind = %q, %v; Decode's kind %q", k, ok, r.Claims.Kind)
		}
	})
}

func BenchmarkPeekKind(b *testing.B) {
	raw := knownAnswerRecords(b)["lora.cose.hex"]
	for b.Loop() {
		PeekKind(raw)
	}
}
