package attest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestPeerIDMatchesLibp2p holds the hand-written peer ID to libp2p's for both
// key types a device can have: Ed25519 (identity multihash) and ECDSA P-256
// (PKIX, over 42 bytes, so SHA2-256).
func TestPeerIDMatchesLibp2p(t *testing.T) {
	for i := 0; i < 20; i++ {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		lk, err := crypto.UnmarshalEd25519PublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		want, err := peer.IDFromPublicKey(lk)
		if err != nil {
			t.Fatal(err)
		}
		if got := peerID(peerKeyEd25519, pub); got != want.String() {
			t.Fatalf("ed25519: peerID = %s, libp2p says %s", got, want)
		}

		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&ek.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		lek, err := crypto.UnmarshalECDSAPublicKey(der)
		if err != nil {
			t.Fatal(err)
		}
		want, err = peer.IDFromPublicKey(lek)
		if err != nil {
			t.Fatal(err)
		}
		if got := peerID(peerKeyECDSA, der); got != want.String() {
			t.Fatalf("ecdsa: peerID = %s, libp2p says %s", got, want)
		}
	}
}
