package tpmkey_test

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/tpmkey"
	"github.com/edge-agent/edge-agent/attest/tpmkey/tpmtest"
)

func TestParseURI(t *testing.T) {
	for _, tt := range []struct {
		uri  string
		want tpmkey.Location
		err  bool
	}{
		{"tpm:", tpmkey.Location{Device: "/dev/tpmrm0", Handle: tpmkey.DefaultHandle}, false},
		{"tpm:/dev/tpm0?handle=0x81000001", tpmkey.Location{Device: "/dev/tpm0", Handle: 0x81000001}, false},
		{"tpm:tcp://127.0.0.1:2321", tpmkey.Location{TCP: "127.0.0.1:2321", Handle: tpmkey.DefaultHandle}, false},
		{"tpm:/dev/tpmrm0?handle=0x80000001", tpmkey.Location{}, true}, // transient, not persistent
		{"tpm:/dev/tpmrm0?hndl=1", tpmkey.Location{}, true},
		{"tpm:tcp://nohost", tpmkey.Location{}, true},
		{"tpm:relative", tpmkey.Location{}, true},
	} {
		got, err := tpmkey.ParseURI(tt.uri)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseURI(%q) = %+v, %v", tt.uri, got, err)
		}
	}
}

// TestKeyLifecycle: create, refuse a second create, reopen, sign, and keep
// signing across a TPM restart (a fresh connection per failure).
func TestKeyLifecycle(t *testing.T) {
	tpm := tpmtest.Start(t)
	if _, err := tpmkey.Open(tpm.URI()); !errors.Is(err, tpmkey.ErrNoKey) {
		t.Fatalf("Open before init: %v, want ErrNoKey", err)
	}
	k, err := tpmkey.Create(tpm.URI(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := k.DeviceID()
	k.Close()
	if _, err := tpmkey.Create(tpm.URI(), rand.Reader); !errors.Is(err, tpmkey.ErrExists) {
		t.Fatalf("second Create: %v, want ErrExists", err)
	}
	k, err = tpmkey.Open(tpm.URI())
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if k.DeviceID() != id {
		t.Fatalf("reopened key has id %s, want %s", k.DeviceID(), id)
	}
	sign := func() error {
		p, _ := attest.EncodePayload(&attest.Claims{Seq: 1, Kind: "sim.counter", Obs: map[string]int{"n": 1}})
		raw, err := attest.SignPayload(k, p)
		if err != nil {
			return err
		}
		r, err := attest.Decode(raw)
		if err != nil {
			return err
		}
		return r.Verify()
	}
	if err := sign(); err != nil {
		t.Fatal(err)
	}
	tpm.Kill()
	if err := sign(); err == nil {
		t.Fatal("signing with the TPM gone succeeded")
	}
	tpm.Restart()
	if err := sign(); err != nil {
		t.Fatalf("after the TPM came back: %v", err)
	}
}
