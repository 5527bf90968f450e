package attesttest_test

import (
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/veraison/go-cose"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/attesttest"
)

// TestSigner: the key ID verifies the signatures, the device ID is the one a
// verifier derives from the key ID, a seed is one device, and Fail fails.
func TestSigner(t *testing.T) {
	s := attesttest.NewSigner(t, 1)
	if s.DeviceID() != attesttest.NewSigner(t, 1).DeviceID() || s.DeviceID() == attesttest.NewSigner(t, 2).DeviceID() {
		t.Fatal("a seed must give one device, different seeds different ones")
	}
	if id, err := attest.DeviceID(cose.AlgorithmEdDSA, s.KeyID()); err != nil || id != s.DeviceID() {
		t.Fatalf("DeviceID %s, but the key ID gives %s (%v)", s.DeviceID(), id, err)
	}
	msg := []byte("to be signed")
	sig, err := s.Sign(nil, msg)
	if err != nil || !ed25519.Verify(s.KeyID(), msg, sig) || s.Signs() != 1 {
		t.Fatalf("Sign = %x, %v (%d signs); want a signature the key ID verifies", sig, err, s.Signs())
	}
	boom := errors.New("secure element gone")
	s.Fail(boom)
	if _, err := s.Sign(nil, msg); !errors.Is(err, boom) || s.Signs() != 1 {
		t.Fatalf("Sign after Fail = %v, want %v and no signature counted", err, boom)
	}
}
