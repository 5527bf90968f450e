package attest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/veraison/go-cose"
)

// P256KeySize is the length of an ES256 kid: the SEC1 compressed P-256
// point (0x02 or 0x03, then X). Compressed rather than the 65-byte
// uncompressed form because the kid travels in every record.
const P256KeySize = 33

// ES256SignatureSize is the COSE form of an ECDSA P-256 signature: r and s,
// each left-padded to 32 bytes (RFC 9053 §2.1), not ASN.1 DER.
const ES256SignatureSize = 64

// ParseP256Key decodes a compressed P-256 kid.
func ParseP256Key(kid []byte) (*ecdsa.PublicKey, error) {
	if len(kid) != P256KeySize || (kid[0] != 2 && kid[0] != 3) {
		return nil, fmt.Errorf("ES256 kid is %d bytes starting %#x, want a %d-byte compressed P-256 point", len(kid), firstByte(kid), P256KeySize)
	}
	x, y := elliptic.UnmarshalCompressed(elliptic.P256(), kid)
	if x == nil {
		return nil, errors.New("ES256 kid is not a point on P-256")
	}
	raw := make([]byte, 65)
	raw[0] = 4
	x.FillBytes(raw[1:33])
	y.FillBytes(raw[33:])
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
}

func firstByte(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// P256KeyID returns the compressed kid of a P-256 public key.
func P256KeyID(pub *ecdsa.PublicKey) ([]byte, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, errors.New("attest: key id: not a P-256 public key")
	}
	raw, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		return nil, fmt.Errorf("attest: key id: %w", err)
	}
	kid := make([]byte, P256KeySize)
	kid[0] = 2 | raw[64]&1
	copy(kid[1:], raw[1:33])
	return kid, nil
}

// ES256Signature packs r and s into the 64-byte COSE form. It refuses values
// that do not fit, so a signer bug cannot produce a record no one verifies.
func ES256Signature(r, s []byte) ([]byte, error) {
	r, s = trimZeros(r), trimZeros(s)
	if len(r) > 32 || len(s) > 32 || len(r) == 0 || len(s) == 0 {
		return nil, fmt.Errorf("attest: ES256 signature: r is %d bytes and s %d, want 1..32 each", len(r), len(s))
	}
	sig := make([]byte, ES256SignatureSize)
	copy(sig[32-len(r):32], r)
	copy(sig[64-len(s):], s)
	return sig, nil
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// DigestSigner is implemented by ES256 signers: it signs a SHA-256 digest
// that the caller computed, returning r||s. x509 certificate requests need
// it, because they hand the signer a digest rather than the message.
type DigestSigner interface {
	SignDigest(digest []byte) ([]byte, error)
}

// CryptoSigner adapts a device Signer to crypto.Signer, for building a
// certificate request: Ed25519 file keys sign the message, ES256 signers the
// SHA-256 digest (returned as ASN.1 DER, which is what x509 wants).
func CryptoSigner(s Signer) (crypto.Signer, error) {
	switch s.Algorithm() {
	case cose.AlgorithmEdDSA:
		f, ok := s.(*fileSigner)
		if !ok {
			return nil, fmt.Errorf("attest: %T cannot sign certificate requests", s)
		}
		return f.priv, nil
	case cose.AlgorithmES256:
		d, ok := s.(DigestSigner)
		if !ok {
			return nil, fmt.Errorf("attest: %T cannot sign a digest", s)
		}
		pub, err := ParseP256Key(s.KeyID())
		if err != nil {
			return nil, fmt.Errorf("attest: %w", err)
		}
		return digestAdapter{d: d, pub: pub}, nil
	}
	return nil, fmt.Errorf("attest: algorithm %v cannot sign certificate requests", s.Algorithm())
}

type digestAdapter struct {
	d   DigestSigner
	pub *ecdsa.PublicKey
}

func (a digestAdapter) Public() crypto.PublicKey { return a.pub }

func (a digestAdapter) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != crypto.SHA256 || len(digest) != 32 {
		return nil, fmt.Errorf("attest: ES256 signs SHA-256 digests only, not %v", opts.HashFunc())
	}
	sig, err := a.d.SignDigest(digest)
	if err != nil {
		return nil, err
	}
	if len(sig) != ES256SignatureSize {
		return nil, fmt.Errorf("attest: ES256 signer returned %d bytes, want %d", len(sig), ES256SignatureSize)
	}
	return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
}

// PublicKey returns the crypto public key a kid names, for matching a
// certificate to a device.
func PublicKey(alg cose.Algorithm, kid []byte) (crypto.PublicKey, error) {
	switch alg {
	case cose.AlgorithmEdDSA:
		if len(kid) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("attest: Ed25519 kid is %d bytes, want %d", len(kid), ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(kid), nil
	case cose.AlgorithmES256:
		k, err := ParseP256Key(kid)
		if err != nil {
			return nil, fmt.Errorf("attest: %w", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("attest: algorithm %v is not supported (EdDSA -8, ES256 -7)", alg)
}

func p256DeviceID(kid []byte) (string, error) {
	pub, err := ParseP256Key(kid)
	if err != nil {
		return "", fmt.Errorf("attest: device id: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub) // libp2p's ECDSA public key bytes
	if err != nil {
		return "", fmt.Errorf("attest: device id: %w", err)
	}
	return peerID(peerKeyECDSA, der), nil
}
