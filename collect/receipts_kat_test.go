package collect

import (
	"crypto/ed25519"
	"encoding/hex"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/edge-agent/edge-agent/uplink/p2p"
)

// katReceipt is a coalesced receipt as the collector signs it (one device,
// two chains, several seq ranges), by the Ed25519 key with seed 0x01…0x20:
// the format in docs/attestation.md ("Collector receipts"). Ed25519 and the
// deterministic CBOR make the bytes fixed; they must never change, and
// agents must keep accepting them.
const katReceipt = "82588ba501647465737402582600240801122079b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad04966403781a6465766963652d6f662d7468652d6b6e6f776e2d616e7377657204828250000102030405060708090a0b0c0d0e0f83820103" +
	"820505820a148250101112131415161718191a1b1c1d1e1f81820707051b17f789599719800058403462c3c5226874e1e91cd2184f39a201c92647ef6685f3c0f94223c78e51ecdb1a3ced20ce731c4700bd5ca7b8a53b2529dc94041158d230aa779799e4990a0a"

// TestReceiptKnownAnswer: the collector's receipt encoding is fixed, and
// the agents' decoder (p2p.OpenReceipt) reads it back exactly.
func TestReceiptKnownAnswer(t *testing.T) {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	var c0, c1 [16]byte
	for i := range c0 {
		c0[i], c1[i] = byte(i), byte(0x10+i)
	}
	r := &p2p.Receipt{Network: "test", Collector: id, Device: "device-of-the-known-answer", Time: 1_727_000_000_000_000_000,
		Chains: []p2p.ChainRanges{{Chain: c0, Ranges: [][2]uint64{{1, 3}, {5, 5}, {10, 20}}}, {Chain: c1, Ranges: [][2]uint64{{7, 7}}}}}
	raw, err := p2p.SignReceipt(k, r)
	if err != nil {
		t.Fatal(err)
	}
	got := hex.EncodeToString(raw)
	if got != katReceipt {
		t.Fatalf("receipt encoding changed:\n got %s\nwant %s", got, katReceipt)
	}
	if _, err := p2p.OpenReceipt(mustHex(t, katReceipt)); err != nil {
		t.Fatalf("the known-answer receipt is refused: %v", err)
	}
	back, err := p2p.OpenReceipt(raw)
	if err != nil {
		t.Fatal(err)
	}
	if back.Collector != id || back.Device != r.Device || back.Time != r.Time || len(back.Chains) != 2 ||
		len(back.Chains[0].Ranges) != 3 || back.Chains[0].Ranges[2] != [2]uint64{10, 20} || back.Chains[1].Ranges[0] != [2]uint64{7, 7} {
		t.Fatalf("read back %+v", back)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
