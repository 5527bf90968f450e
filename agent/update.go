package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edge-agent/edge-agent/atomicfile"
	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/status"
)

// The agent's memory of its own software, under <data_dir>:
//
//	agent-version           the version that last wrote a durable boot record
//	upgrade/rollback.json   written by the package's health gate when it
//	                        rolled a release back (status.UpdateRollbackFile);
//	                        the next start signs an agent.update record for
//	                        it and renames the file to rollback.reported.json
const versionFile = "agent-version"

// softwareChange works out, at start, what this start means for the
// device's history: the boot reason (upgrade, downgrade or "" for none) and
// the agent.update observations to sign right after the boot record.
func softwareChange(dataDir, version string, now time.Time) (reason string, obs []drivers.Observation, err error) {
	last, err := os.ReadFile(filepath.Join(dataDir, versionFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", nil, fmt.Errorf("agent: read %s: %w", versionFile, err)
	default:
		if prev := strings.TrimSpace(string(last)); prev != "" && prev != version {
			ev, r := attest.UpdateUpgrade, attest.BootUpgrade
			if compareVersions(version, prev) < 0 {
				ev, r = attest.UpdateDowngrade, attest.BootDowngrade
			}
			reason = r
			obs = append(obs, drivers.Observation{Kind: attest.KindUpdate, Source: "agent", Time: now,
				Data: attest.Update{Event: ev, From: prev, To: version}})
		}
	}
	rb, err := status.ReadRollback(filepath.Join(dataDir, status.UpdateRollbackFile))
	if err != nil {
		return "", nil, err
	}
	if rb != nil {
		obs = append(obs, drivers.Observation{Kind: attest.KindUpdate, Source: "agent", Time: now,
			Data: attest.Update{Event: attest.UpdateRollback, From: rb.From, To: rb.To, Reason: rb.Reason, At: rb.At.UnixNano()}})
	}
	return reason, obs, nil
}

// softwareChangeDurable runs once the boot record and the agent.update
// records of this start are durable: from now on they are the device's
// history, so the version file moves on and the rollback is reported.
func softwareChangeDurable(dataDir, version string) error {
	if err := atomicfile.WriteFile(filepath.Join(dataDir, versionFile), []byte(version+"\n"), 0o600); err != nil {
		return fmt.Errorf("agent: write %s: %w", versionFile, err)
	}
	err := os.Rename(filepath.Join(dataDir, status.UpdateRollbackFile), filepath.Join(dataDir, status.UpdateRollbackReportedFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("agent: mark the rollback reported: %w", err)
	}
	return nil
}

// compareVersions orders two agent versions as dpkg orders Debian versions
// (a leading "v" dropped, "~" before anything, even the end), so that
// "v0.2.0" > "v0.1.9-4-gabc" > "v0.1.9" > "v0.1.9~rc1". It returns -1, 0 or 1.
func compareVersions(a, b string) int {
	a, b = strings.TrimPrefix(a, "v"), strings.TrimPrefix(b, "v")
	for a != "" || b != "" {
		// Non-digit parts, character by character.
		for (a != "" && !isDigit(a[0])) || (b != "" && !isDigit(b[0])) {
			ca, cb := orderChar(a), orderChar(b)
			if ca != cb {
				if ca < cb {
					return -1
				}
				return 1
			}
			a, b = a[1:], b[1:]
		}
		// Digit parts, as numbers.
		na, ra := leadingNumber(a)
		nb, rb := leadingNumber(b)
		if na != nb {
			if len(na) != len(nb) {
				if len(na) < len(nb) {
					return -1
				}
				return 1
			}
			if na < nb {
				return -1
			}
			return 1
		}
		a, b = ra, rb
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// orderChar is dpkg's weight of the first character of s in a non-digit
// part: "~" sorts before the end of the part, the end before letters, and
// letters before other characters. Only called while a non-digit is next.
func orderChar(s string) int {
	switch {
	case s == "" || isDigit(s[0]):
		return 0
	case s[0] == '~':
		return -1
	case s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z':
		return int(s[0])
	default:
		return int(s[0]) + 256
	}
}

// leadingNumber splits s into its leading digits without leading zeros
// and the rest.
func leadingNumber(s string) (num, rest string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return strings.TrimLeft(s[:i], "0"), s[i:]
}
