// Package attesttest holds fakes of attest's interfaces for tests: an ES256
// signer with its P-256 key in memory, standing in for a TPM or a secure
// element.
package attesttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/veraison/go-cose"

	"github.com/edge-agent/edge-agent/attest"
)

// ES256Signer is a software P-256 key that signs like a hardware one. Fail
// makes every signature fail (a key backend that vanished); Count counts
// signatures made.
type ES256Signer struct {
	priv  *ecdsa.PrivateKey
	kid   []byte
	id    string
	Fail  atomic.Bool
	Count atomic.Int64
}

// ErrGone is what a failing ES256Signer returns.
var ErrGone = errors.New("attesttest: key backend gone")

// NewES256 returns a signer for the 32-byte private scalar d.
func NewES256(d []byte) (*ES256Signer, error) {
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		return nil, fmt.Errorf("attesttest: %w", err)
	}
	kid, err := attest.P256KeyID(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	id, err := attest.DeviceID(cose.AlgorithmES256, kid)
	if err != nil {
		return nil, err
	}
	return &ES256Signer{priv: priv, kid: kid, id: id}, nil
}

func (s *ES256Signer) Algorithm() cose.Algorithm { return cose.AlgorithmES256 }
func (s *ES256Signer) KeyID() []byte             { return append([]byte(nil), s.kid...) }
func (s *ES256Signer) DeviceID() string          { return s.id }

// Sign hashes content with SHA-256 and signs the digest.
func (s *ES256Signer) Sign(_ io.Reader, content []byte) ([]byte, error) {
	d := sha256.Sum256(content)
	return s.SignDigest(d[:])
}

// SignDigest signs a SHA-256 digest, returning r||s.
func (s *ES256Signer) SignDigest(digest []byte) ([]byte, error) {
	if s.Fail.Load() {
		return nil, ErrGone
	}
	r, ss, err := ecdsa.Sign(rand.Reader, s.priv, digest)
	if err != nil {
		return nil, err
	}
	s.Count.Add(1)
	return attest.ES256Signature(r.Bytes(), ss.Bytes())
}
