package p2p_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
)

// newSigner makes a device key in a temporary directory.
func newSigner(tb testing.TB, seed byte) attest.Signer {
	tb.Helper()
	s, err := attest.CreateKey("file:"+filepath.Join(tb.TempDir(), "device.key"), bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		tb.Fatalf("create key: %v", err)
	}
	return s
}

// chainOf signs n records of one chain starting at seq 1.
func chainOf(tb testing.TB, s attest.Signer, chain [16]byte, n int) [][]byte {
	tb.Helper()
	var prev [32]byte
	out := make([][]byte, 0, n)
	for i := 1; i <= n; i++ {
		raw, hash := signOne(tb, s, chain, uint64(i), prev, map[string]any{"n": i})
		out = append(out, raw)
		prev = hash
	}
	return out
}

func signOne(tb testing.TB, s attest.Signer, chain [16]byte, seq uint64, prev [32]byte, obs map[string]any) ([]byte, [32]byte) {
	tb.Helper()
	c := attest.Claims{Chain: chain, Seq: seq, Prev: prev, Time: time.Now().UnixNano(), Kind: "test.count", Source: "test", Obs: obs}
	p, err := attest.EncodePayload(&c)
	if err != nil {
		tb.Fatalf("encode payload: %v", err)
	}
	raw, err := attest.SignPayload(s, p)
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return raw, attest.PayloadHash(p)
}
