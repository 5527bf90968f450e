// Package fleet plays many devices for collector load tests and for
// operators sizing a collector setup (`edge-collector loadgen`): each
// device has its own Ed25519 key and chain, signs records as the agent does,
// and ships them over MQTT through the agent's own MQTT uplink (PUBACK or
// end-to-end receipts), from an in-memory outbox.
//
// Concurrency: a Device is safe for concurrent use; Run owns its goroutines.
package fleet

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/veraison/go-cose"

	"github.com/edge-agent/edge-agent/attest"
)

// memSigner is an Ed25519 key in memory (the agent's file key without the
// file): load generation makes thousands of them.
type memSigner struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	id   string
}

func (s *memSigner) Algorithm() cose.Algorithm { return cose.AlgorithmEdDSA }
func (s *memSigner) Sign(_ io.Reader, content []byte) ([]byte, error) {
	return ed25519.Sign(s.priv, content), nil
}
func (s *memSigner) KeyID() []byte    { return append([]byte(nil), s.pub...) }
func (s *memSigner) DeviceID() string { return s.id }

// Device is one simulated device: a key and one chain.
type Device struct {
	signer *memSigner
	mu     sync.Mutex
	chain  [16]byte
	seq    uint64
	prev   [32]byte
}

// NewDevice makes a device with a fresh key and chain from rand.
func NewDevice(rand io.Reader) (*Device, error) {
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("fleet: key: %w", err)
	}
	id, err := attest.DeviceID(cose.AlgorithmEdDSA, pub)
	if err != nil {
		return nil, fmt.Errorf("fleet: device id: %w", err)
	}
	d := &Device{signer: &memSigner{priv: priv, pub: pub, id: id}}
	if _, err := io.ReadFull(rand, d.chain[:]); err != nil {
		return nil, fmt.Errorf("fleet: chain id: %w", err)
	}
	return d, nil
}

// ID is the device id.
func (d *Device) ID() string { return d.signer.id }

// Signer is the device key.
func (d *Device) Signer() attest.Signer { return d.signer }

// Chain is the device's chain id.
func (d *Device) Chain() [16]byte { return d.chain }

// Next signs the next record of the chain: a "fleet.sample" with a counter
// and padding to make records about size bytes of payload.
func (d *Device) Next(t time.Time, pad int) (raw []byte, seq uint64, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := attest.Claims{Chain: d.chain, Seq: d.seq + 1, Prev: d.prev, Time: t.UnixNano(), Kind: "fleet.sample", Source: "loadgen",
		Obs: map[string]any{"n": d.seq + 1, "pad": make([]byte, pad)}}
	raw, h, err := d.signLocked(&c)
	if err != nil {
		return nil, 0, err
	}
	d.seq, d.prev = c.Seq, h
	return raw, c.Seq, nil
}

// Sign signs arbitrary claims with the device key (forks, gaps and broken
// links in tests) without moving the chain; it returns the payload hash.
func (d *Device) Sign(c *attest.Claims) ([]byte, [32]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.signLocked(c)
}

func (d *Device) signLocked(c *attest.Claims) ([]byte, [32]byte, error) {
	p, err := attest.EncodePayload(c)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("fleet: encode: %w", err)
	}
	raw, err := attest.SignPayload(d.signer, p)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("fleet: sign: %w", err)
	}
	return raw, attest.PayloadHash(p), nil
}
