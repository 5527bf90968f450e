package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The files the package's post-upgrade health gate (packaging/gate/health-gate)
// leaves under the data directory.
const (
	UpdatePendingFile          = "upgrade/pending"                // "OLD NEW": an upgrade not judged yet
	UpdateRollbackFile         = "upgrade/rollback.json"          // a rollback the daemon has not signed yet
	UpdateRollbackReportedFile = "upgrade/rollback.reported.json" // ... and once it has
)

// Update is what the health gate has to say about this device's software.
type Update struct {
	PendingFrom  string    `json:"pending_from,omitempty"` // an upgrade waiting for the gate
	PendingTo    string    `json:"pending_to,omitempty"`
	LastRollback *Rollback `json:"last_rollback,omitempty"`
}

// Rollback is the health gate's report of a release it put back.
type Rollback struct {
	From     string    `json:"from"` // the release that failed
	To       string    `json:"to"`   // the release restored
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
	Reported bool      `json:"reported"` // the daemon has signed it as an agent.update record
}

// ReadRollback reads a rollback report; a missing file is (nil, nil).
func ReadRollback(path string) (*Rollback, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("status: read %s: %w", path, err)
	}
	var rb Rollback
	if err := json.Unmarshal(b, &rb); err != nil || rb.From == "" || rb.To == "" {
		return nil, fmt.Errorf("status: %s is not a rollback report (want from, to, reason, at): %v", path, err)
	}
	return &rb, nil
}

// ReadUpdate gathers the gate's files under dataDir; nil when there are
// none, so a device that never upgraded shows nothing.
func ReadUpdate(dataDir string) *Update {
	var u Update
	if b, err := os.ReadFile(filepath.Join(dataDir, UpdatePendingFile)); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			u.PendingFrom, u.PendingTo = f[0], f[1]
		}
	}
	if rb, _ := ReadRollback(filepath.Join(dataDir, UpdateRollbackFile)); rb != nil {
		u.LastRollback = rb
	} else if rb, _ := ReadRollback(filepath.Join(dataDir, UpdateRollbackReportedFile)); rb != nil {
		rb.Reported = true
		u.LastRollback = rb
	}
	if u == (Update{}) {
		return nil
	}
	return &u
}
