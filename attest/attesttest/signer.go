// Package attesttest holds a fake attest.Signer for tests: an Ed25519 key
// made from a one-byte seed, in memory (no key file), that counts its
// signatures and can be made to fail as a secure element that stops
// answering does. A Signer is safe for concurrent use, as attest.Signer
// requires.
package attesttest

import (
	"bytes"
	"crypto/ed25519"
	"io"
	"sync"
	"testing"

	"github.com/veraison/go-cose"

	"github.com/edge-agent/edge-agent/attest"
)

// Signer is a test device key. Make it with NewSigner.
type Signer struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	id   string

	mu    sync.Mutex
	err   error
	signs int
}

var _ attest.Signer = (*Signer)(nil)

// NewSigner is the key whose Ed25519 seed is 32 copies of seed: the same
// seed gives the same device in every run, different seeds different ones.
func NewSigner(tb testing.TB, seed byte) *Signer {
	tb.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	id, err := attest.DeviceID(cose.AlgorithmEdDSA, pub)
	if err != nil {
		tb.Fatalf("attesttest: device id: %v", err)
	}
	return &Signer{priv: priv, pub: pub, id: id}
}

func (s *Signer) Algorithm() cose.Algorithm { return cose.AlgorithmEdDSA }

// Sign signs content, or returns the error given to Fail.
func (s *Signer) Sign(_ io.Reader, content []byte) ([]byte, error) {
	s.mu.Lock()
	err := s.err
	if err == nil {
		s.signs++
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return ed25519.Sign(s.priv, content), nil
}

func (s *Signer) KeyID() []byte    { return append([]byte(nil), s.pub...) }
func (s *Signer) DeviceID() string { return s.id }

// Ed25519PrivateKey lets transports whose identity is the device key (the
// libp2p uplink) use a test key, as they use a key file's.
func (s *Signer) Ed25519PrivateKey() ed25519.PrivateKey { return s.priv }

// Fail makes later Signs return err; nil makes them sign again.
func (s *Signer) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// Signs is how many signatures Sign has made.
func (s *Signer) Signs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signs
}
