// Package storetest opens an outbox for a test and holds it to its
// invariants: when the test ends, the store's full consistency check
// (store.Store.Check: the file against itself and against the in-memory
// head and counters) must pass before it is closed, so a test that leaves
// the outbox inconsistent fails even if its own assertions missed it.
package storetest

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/edge-agent/edge-agent/store"
)

// Open opens the store at path, failing tb if it cannot. At cleanup it runs
// Check (unless the test closed the store itself) and closes the store.
func Open(tb testing.TB, path string, opts store.Options) *store.Store {
	tb.Helper()
	s, err := store.Open(path, opts)
	if err != nil {
		tb.Fatalf("storetest: open %s: %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Check(); err != nil && !errors.Is(err, store.ErrClosed) {
			tb.Errorf("storetest: the outbox is inconsistent at the end of the test: %v", err)
		}
		if err := s.Close(); err != nil {
			tb.Errorf("storetest: close %s: %v", path, err)
		}
	})
	return s
}

// Temp opens a new store in a temporary directory, as Open does.
func Temp(tb testing.TB, opts store.Options) *store.Store {
	tb.Helper()
	return Open(tb, filepath.Join(tb.TempDir(), "outbox.db"), opts)
}
