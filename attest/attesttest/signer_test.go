package attesttest_test

import (
	"errors"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/attesttest"
)

func TestSignerMakesVerifiableRecords(t *testing.T) {
	s := attesttest.NewSigner(t, 1)
	if s.DeviceID() != attesttest.NewSigner(t, 1).DeviceID() || s.DeviceID() == attesttest.NewSigner(t, 2).DeviceID() {
		t.Fatal("a seed must give one device, different seeds different ones")
	}
	c := attest.Claims{Seq: 1, Time: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano(), Kind: "test.count", Source: "t", Obs: map[string]any{"n": 1}}
	p, err := attest.EncodePayload(&c)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := attest.SignPayload(s, p)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := attest.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Verify(); err != nil {
		t.Fatalf("a record signed by the test signer does not verify: %v", err)
	}
	if s.Signs() != 1 {
		t.Fatalf("Signs = %d, want 1", s.Signs())
	}
	boom := errors.New("secure element gone")
	s.Fail(boom)
	if _, err := attest.SignPayload(s, p); !errors.Is(err, boom) {
		t.Fatalf("sign after Fail = %v, want %v", err, boom)
	}
}
