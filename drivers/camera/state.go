package camera

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/edge-agent/edge-agent/atomicfile"
)

// fileKey identifies one version of a file. A file whose size or mtime
// changes is a new version and is attested again.
type fileKey struct {
	Size  int64 `json:"size"`
	MTime int64 `json:"mtime"` // Unix ns
}

// stateEntry is what the state file remembers of an attested version.
type stateEntry struct {
	fileKey
	SHA256 string `json:"sha256"` // hex, for a human reading the file
}

// stateFile is the on-disk form of what has been attested. It holds one
// entry per file still in the directory, so it is as large as the
// directory's listing, not its history.
type stateFile struct {
	Version int                   `json:"version"`
	Dir     string                `json:"dir"`
	Files   map[string]stateEntry `json:"files"`
}

const stateVersion = 1

// loadState reads path; a missing file is an empty state.
func loadState(path string) (map[string]stateEntry, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]stateEntry{}, nil
	}
	if err != nil {
		return map[string]stateEntry{}, fmt.Errorf("camera: read state %s: %w", path, err)
	}
	var s stateFile
	if err := json.Unmarshal(b, &s); err != nil {
		return map[string]stateEntry{}, fmt.Errorf("camera: parse state %s: %w", path, err)
	}
	if s.Version != stateVersion {
		return map[string]stateEntry{}, fmt.Errorf("camera: state %s has version %d, want %d", path, s.Version, stateVersion)
	}
	if s.Files == nil {
		s.Files = map[string]stateEntry{}
	}
	return s.Files, nil
}

// saveState replaces path atomically (package atomicfile): a crash leaves
// either the old or the new state, never a torn one.
func saveState(path, dir string, files map[string]stateEntry) error {
	b, err := json.MarshalIndent(stateFile{Version: stateVersion, Dir: dir, Files: files}, "", " ")
	if err != nil {
		return fmt.Errorf("camera: encode state: %w", err)
	}
	if err := atomicfile.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("camera: save state: %w", err)
	}
	return nil
}

func newEntry(k fileKey, sum []byte) stateEntry {
	return stateEntry{fileKey: k, SHA256: hex.EncodeToString(sum)}
}
