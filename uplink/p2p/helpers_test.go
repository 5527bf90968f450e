package p2p_test

import (
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
)

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
