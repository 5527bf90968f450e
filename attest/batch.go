//go:build !noedbatch

package attest

import (
	"crypto/ed25519"

	"github.com/edge-agent/edge-agent/attest/edbatch"
)

// signBatch signs many messages with one key at once, in order.
type signBatch func(msgs [][]byte) [][]byte

// newBatchSigner expands priv for attest/edbatch.
func newBatchSigner(priv ed25519.PrivateKey) (signBatch, error) {
	k, err := edbatch.NewKey(priv)
	if err != nil {
		return nil, err
	}
	return k.Sign, nil
}
