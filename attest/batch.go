//go:build !noedbatch

package attest

import (
	"crypto/ed25519"

	"github.com/edge-agent/edge-agent/attest/edbatch"
)

// BatchSignBuilt says this build signs chunks of records in one batch.
const BatchSignBuilt = true

// newBatchSigner expands priv for attest/edbatch.
func newBatchSigner(priv ed25519.PrivateKey) (signBatch, error) {
	k, err := edbatch.NewKey(priv)
	if err != nil {
		return nil, err
	}
	return k.Sign, nil
}
