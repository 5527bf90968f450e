package attest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-agent/edge-agent/drivers"
)

// seedRecords are real records of every kind, for the fuzz corpora.
func seedRecords(tb testing.TB) [][]byte {
	tb.Helper()
	s := testSigner(tb, 0)
	var out [][]byte
	for _, kc := range knownClaims() {
		raw, _ := signClaims(tb, s, &kc.c)
		out = append(out, raw)
	}
	b := newChain(tb, s, 1)
	out = append(out, b.add(KindBoot, Boot{Version: "v1", Reason: BootRecovered, PrevChain: make([]byte, 16), PrevSeq: 9}))
	out = append(out, b.add(drivers.KindCounter, map[string]any{"nested": []any{1, "two", 3.5, []byte{4}}}))
	return out
}

func FuzzDecode(f *testing.F) {
	for _, raw := range seedRecords(f) {
		f.Add(raw)
	}
	f.Add([]byte{})
	f.Add([]byte{0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40})
	// ES256 and session records (#13), from their known-answer files.
	for _, name := range []string{"es256.cose.hex", "session.cose.hex"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(mustHex(f, strings.TrimSpace(string(b))))
	}
	s := testSigner(f, 0)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := Decode(raw)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		verr := r.Verify()
		if verr != nil && !errors.Is(verr, ErrBadSignature) {
			t.Fatalf("Verify error %v does not wrap ErrBadSignature", verr)
		}
		// One record, one encoding: the claims re-encode to the payload.
		p, err := EncodePayload(&r.Claims)
		if err != nil {
			t.Fatalf("decoded claims do not re-encode: %v", err)
		}
		if !bytes.Equal(p, r.Payload) {
			t.Fatalf("payload re-encodes differently:\n%x\n%x", p, r.Payload)
		}
		again, err := Decode(bytes.Clone(raw))
		if err != nil || again.DeviceID != r.DeviceID || (again.Verify() == nil) != (verr == nil) {
			t.Fatalf("second decode disagrees: %v", err)
		}
		// Records of the test key re-sign to the same bytes (Ed25519 is
		// deterministic) exactly when they verify.
		if bytes.Equal(r.KeyID, s.KeyID()) {
			signed, err := SignPayload(s, r.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(signed, raw) != (verr == nil) {
				t.Fatalf("re-signing gives equal bytes %v but Verify says %v", bytes.Equal(signed, raw), verr)
			}
		}
		if _, err := r.JSON(); err != nil {
			t.Fatalf("JSON of a decoded record: %v", err)
		}
	})
}

func FuzzReadSequence(f *testing.F) {
	recs := seedRecords(f)
	f.Add(bytes.Join(recs, nil))
	f.Add(recs[0][:len(recs[0])/2])
	f.Add([]byte{0x9f, 0x01, 0x5f, 0x41, 0x00, 0xff, 0xff, 0xbf, 0x61, 'a', 0xf6, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		var items [][]byte
		err := ReadSequence(bytes.NewReader(in), func(raw []byte) error {
			items = append(items, raw)
			return nil
		})
		joined := bytes.Join(items, nil)
		if !bytes.HasPrefix(in, joined) {
			t.Fatalf("items are not a prefix of the input")
		}
		if err == nil && len(joined) != len(in) {
			t.Fatalf("success after reading %d of %d bytes", len(joined), len(in))
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
		for i, item := range items {
			if len(item) == 0 {
				t.Fatalf("item %d is empty", i)
			}
			n := 0
			if err := ReadSequence(bytes.NewReader(item), func(raw []byte) error {
				n++
				if !bytes.Equal(raw, item) {
					t.Fatalf("item %d reframes differently", i)
				}
				return nil
			}); err != nil || n != 1 {
				t.Fatalf("item %d alone: %v, %d items", i, err, n)
			}
		}
	})
}
