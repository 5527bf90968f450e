//go:build !notpm

package keys

import (
	"errors"
	"io"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/tpmkey"
)

// TPMBuilt reports whether this build has the tpm: backend; small builds
// for gateways without a TPM (-tags notpm) leave it out.
const TPMBuilt = true

func openTPM(uri string) (attest.Signer, error) { return tpmkey.Open(uri) }

func createTPM(uri string, rand io.Reader) (attest.Signer, error) { return tpmkey.Create(uri, rand) }

func tpmExists(err error) bool   { return errors.Is(err, tpmkey.ErrExists) }
func tpmNotFound(err error) bool { return errors.Is(err, tpmkey.ErrNoKey) }

func describeTPM(s attest.Signer) (string, bool) {
	if k, ok := s.(*tpmkey.Signer); ok {
		return "TPM 2.0 at " + k.Location().String(), true
	}
	return "", false
}
