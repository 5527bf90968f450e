package main

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/attesttest"
	"github.com/edge-agent/edge-agent/drivers"
)

// TestVerifyHardwareKeyRecords: `edge-agent verify` checks a chain of
// session records (and ES256 ones) and fails on a record whose binding has
// expired; --json names the session key.
func TestVerifyHardwareKeyRecords(t *testing.T) {
	hw, err := attesttest.NewES256(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	boot := bytes.Repeat([]byte{2}, 16)
	chain := [16]byte{4}
	ss := attest.NewSessionSigner(hw, func() time.Time { return now })
	if _, err := ss.Rotate(rand.Reader, attest.BindingClaims{Chain: chain, Boot: boot, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	var prev [32]byte
	sign := func(s attest.Signer, seq uint64, at time.Time) []byte {
		c := attest.Claims{Chain: chain, Seq: seq, Prev: prev, Time: at.UnixNano(), Kind: drivers.KindCounter, Source: "sim0", Obs: drivers.Counter{N: seq}, Boot: boot}
		p, err := attest.EncodePayload(&c)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := attest.SignPayload(s, p)
		if err != nil {
			t.Fatal(err)
		}
		prev = attest.PayloadHash(p)
		return raw
	}
	for seq := uint64(1); seq <= 5; seq++ {
		s := attest.Signer(ss)
		if seq == 3 {
			s = hw // the hardware key signs one directly
		}
		file.Write(sign(s, seq, now))
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.cbor")
	os.WriteFile(good, file.Bytes(), 0o644)
	code, out, errOut := runCmd(t.Context(), t, cmdVerify, "--json", good)
	if code != 0 || strings.Count(out, `"session":{"key":`) != 4 || !strings.Contains(out, `"alg":"ES256"`) {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, errOut)
	}

	// A record dated after its session expired (the signer's clock is
	// fooled; the record's own time is what counts).
	file.Write(sign(ss, 6, now.Add(2*time.Hour)))
	bad := filepath.Join(dir, "bad.cbor")
	os.WriteFile(bad, file.Bytes(), 0o644)
	code, out, errOut = runCmd(t.Context(), t, cmdVerify, bad)
	if code == 0 || !strings.Contains(out+errOut, "bad signatures: 1") {
		t.Fatalf("verify of an expired binding: exit %d\n%s\n%s", code, out, errOut)
	}
}
