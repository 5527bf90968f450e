//go:build notpm

package keys

import (
	"errors"
	"fmt"
	"io"

	"github.com/edge-agent/edge-agent/attest"
)

// TPMBuilt reports whether this build has the tpm: backend: this one
// (-tags notpm, for gateways without a TPM) does not.
const TPMBuilt = false

// ErrNoTPM is returned for a tpm: key in a build without the TPM backend.
var ErrNoTPM = errors.New("this build has no TPM support (a small-device build made with -tags notpm): use a file: or ecc608: key, or install the full build")

func openTPM(string) (attest.Signer, error) { return nil, fmt.Errorf("keys: %w", ErrNoTPM) }

func createTPM(string, io.Reader) (attest.Signer, error) {
	return nil, fmt.Errorf("keys: %w", ErrNoTPM)
}

func tpmExists(error) bool   { return false }
func tpmNotFound(error) bool { return false }

func describeTPM(attest.Signer) (string, bool) { return "", false }
