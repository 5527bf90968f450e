package p2p

import (
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/libp2p/go-libp2p/core/crypto"
	pb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/edge-agent/edge-agent/attest"
)

// hwPrivKey is a libp2p private key whose private half stays in a TPM or
// secure element: Sign goes to the hardware, Raw refuses.
type hwPrivKey struct {
	s   attest.DigestSigner
	pub crypto.PubKey
}

func hardwareHostKey(signer attest.Signer) (crypto.PrivKey, error) {
	ds, ok := signer.(attest.DigestSigner)
	if !ok {
		return nil, fmt.Errorf("p2p: host key: signer %T cannot sign digests: %w", signer, ErrNoHostKey)
	}
	ek, err := attest.ParseP256Key(signer.KeyID())
	if err != nil {
		return nil, fmt.Errorf("p2p: host key: %w", err)
	}
	pub, err := crypto.ECDSAPublicKeyFromPubKey(*ek)
	if err != nil {
		return nil, fmt.Errorf("p2p: host key: %w", err)
	}
	k := &hwPrivKey{s: ds, pub: pub}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("p2p: host key: %w", err)
	}
	if id.String() != signer.DeviceID() {
		return nil, fmt.Errorf("p2p: host key: peer id %s differs from device id %s: %w", id, signer.DeviceID(), ErrNoHostKey)
	}
	return k, nil
}

var errNotExportable = errors.New("p2p: the device key is held by hardware and cannot be exported")

// Sign signs as libp2p's ECDSA keys do: SHA-256 of data, ASN.1 DER (r, s).
func (k *hwPrivKey) Sign(data []byte) ([]byte, error) {
	d := sha256.Sum256(data)
	sig, err := k.s.SignDigest(d[:])
	if err != nil {
		return nil, err
	}
	if len(sig) != attest.ES256SignatureSize {
		return nil, fmt.Errorf("p2p: hardware signature is %d bytes", len(sig))
	}
	return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
}

func (k *hwPrivKey) GetPublic() crypto.PubKey { return k.pub }
func (k *hwPrivKey) Raw() ([]byte, error)     { return nil, errNotExportable }
func (k *hwPrivKey) Type() pb.KeyType         { return pb.KeyType_ECDSA }
func (k *hwPrivKey) Equals(o crypto.Key) bool { return crypto.KeyEqual(k, o) }
