package storetest_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/edge-agent/edge-agent/store"
	"github.com/edge-agent/edge-agent/store/storetest"
)

// recordingTB collects what Open's cleanup reports instead of failing the
// real test, so the test can look at it.
type recordingTB struct {
	testing.TB
	errs     []string
	cleanups []func()
}

func (r *recordingTB) Helper()          {}
func (r *recordingTB) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recordingTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

var marker = bytes.Repeat([]byte("storetest record "), 64)

func fill(tb testing.TB, s *store.Store) {
	tb.Helper()
	var es []store.Entry
	for seq := uint64(1); seq <= 3; seq++ {
		es = append(es, store.Entry{Seq: seq, Hash: sha256.Sum256(marker), Data: marker})
	}
	if _, err := s.Append(es, nil); err != nil {
		tb.Fatal(err)
	}
}

func TestCleanupChecksAndCloses(t *testing.T) {
	rec := &recordingTB{TB: t}
	s := storetest.Temp(rec, store.Options{})
	fill(t, s)
	rec.end()
	if len(rec.errs) != 0 {
		t.Fatalf("a sound store failed its cleanup: %v", rec.errs)
	}
	if err := s.Records(func(store.Record) error { return nil }); err == nil {
		t.Error("the store is still open after cleanup")
	}
}

func TestCleanupFailsAnInconsistentStore(t *testing.T) {
	rec := &recordingTB{TB: t}
	s := storetest.Temp(rec, store.Options{})
	fill(t, s)
	// Damage a record in the file under the open store, as a bad SD card would.
	b, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, marker)
	if i < 0 {
		t.Fatal("record bytes not found in the file")
	}
	f, err := os.OpenFile(s.Path(), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("X"), int64(i+10)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rec.end()
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "inconsistent") {
		t.Fatalf("cleanup of a damaged store reported %q, want one inconsistency", rec.errs)
	}
}
