package attest_test

import (
	"testing"

	"github.com/edge-agent/edge-agent/attest"
)

// The session-record counterparts of BenchmarkSignPayload and
// BenchmarkVerify (same claims shape as the counter records).
func sessionRecord(b *testing.B) (*attest.SessionSigner, []byte) {
	now := t0
	ss := newSessionSigner(b, es256(b, 0), &now, 1)
	p, err := attest.EncodePayload(claims(1, now, [32]byte{}))
	if err != nil {
		b.Fatal(err)
	}
	return ss, p
}

func BenchmarkSignSession(b *testing.B) {
	ss, p := sessionRecord(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := attest.SignPayload(ss, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifySession(b *testing.B) {
	ss, p := sessionRecord(b)
	raw, _ := attest.SignPayload(ss, p)
	r, err := attest.Decode(raw)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Verify(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSession(b *testing.B) {
	ss, p := sessionRecord(b)
	raw, _ := attest.SignPayload(ss, p)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := attest.Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}
