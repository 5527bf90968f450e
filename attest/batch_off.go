//go:build noedbatch

package attest

import "crypto/ed25519"

// BatchSignBuilt says this build signs chunks of records in one batch.
const BatchSignBuilt = false

// newBatchSigner in the small OpenWrt builds: the batch signer's curve code
// (a second copy of the standard library's, exported) costs more flash than
// their budget has, and their few records a second do not need it; records
// are signed one at a time.
func newBatchSigner(ed25519.PrivateKey) (signBatch, error) { return nil, nil }
