package attest

import (
	"crypto/ed25519"
	"encoding/hex"
	"testing"

	"github.com/edge-agent/edge-agent/drivers"
)

// rfc8032Seed is the secret key of RFC 8032 §7.1 TEST 1, so the test
// signer's public key is a published value (checked in TestKnownKey).
const (
	rfc8032Seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	rfc8032Pub  = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
)

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// testSigner returns the signer of the fixed RFC 8032 key, or of a key
// derived from n when n > 0 (a second device).
func testSigner(tb testing.TB, n byte) *fileSigner {
	tb.Helper()
	seed := mustHex(tb, rfc8032Seed)
	seed[0] ^= n
	s, err := newFileSigner(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		tb.Fatalf("newFileSigner: %v", err)
	}
	return s
}

// signClaims encodes and signs c, failing the test on any error.
func signClaims(tb testing.TB, s Signer, c *Claims) (raw, payload []byte) {
	tb.Helper()
	payload, err := EncodePayload(c)
	if err != nil {
		tb.Fatalf("EncodePayload(seq %d): %v", c.Seq, err)
	}
	raw, err = SignPayload(s, payload)
	if err != nil {
		tb.Fatalf("SignPayload(seq %d): %v", c.Seq, err)
	}
	return raw, payload
}

// chainBuilder writes a valid chain the way the pipeline will.
type chainBuilder struct {
	tb    testing.TB
	s     Signer
	chain [16]byte
	seq   uint64
	prev  [32]byte
	time  int64
}

func newChain(tb testing.TB, s Signer, id byte) *chainBuilder {
	tb.Helper()
	b := &chainBuilder{tb: tb, s: s, time: 1_750_000_000_000_000_000}
	for i := range b.chain {
		b.chain[i] = id + byte(i)
	}
	return b
}

// claims returns the claims of the next record without advancing.
func (b *chainBuilder) claims(kind string, obs any) *Claims {
	return &Claims{
		Chain: b.chain, Seq: b.seq + 1, Prev: b.prev, Time: b.time + int64(b.seq+1)*1000,
		Kind: kind, Source: "sim0", Obs: obs,
	}
}

// add signs the next record and advances the chain.
func (b *chainBuilder) add(kind string, obs any) []byte {
	b.tb.Helper()
	return b.addClaims(b.claims(kind, obs))
}

func (b *chainBuilder) addClaims(c *Claims) []byte {
	b.tb.Helper()
	raw, payload := signClaims(b.tb, b.s, c)
	b.seq = c.Seq
	b.prev = PayloadHash(payload)
	return raw
}

// counters appends n sim.counter records and returns them.
func (b *chainBuilder) counters(n int) [][]byte {
	b.tb.Helper()
	var out [][]byte
	for range n {
		out = append(out, b.add(drivers.KindCounter, drivers.Counter{N: b.seq + 1}))
	}
	return out
}
