package store

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bbolt never shrinks its file: after an outage the outbox keeps the size
// of its largest backlog, as free pages, until the next outage reuses them.
// On a small card that space is better given back. When an ack leaves the
// file mostly free, the store copies what is left into a new file and
// renames it over the old one: a moment when the live data is small, so the
// copy is quick, and the only one, since it needs the writer lock that
// Append and Ack hold.

const (
	// compactSlack is how much larger than its live data (twice the record
	// bytes, plus the reserve) the file must be before it is compacted.
	compactSlack = 16 << 20
	// compactMaxLive is the most record bytes a compaction copies: it holds
	// the writer lock, and appends wait for it, so it only runs when the
	// copy is small (tens of milliseconds on an SD card).
	compactMaxLive = 8 << 20
	// compactEvery spaces compactions, so a file that does not shrink
	// (a copy that failed, or a steady large backlog) is not copied on
	// every ack.
	compactEvery = time.Minute
)

// maybeCompact compacts the file if an ack or delete left it mostly free.
// The caller holds writeMu and has just committed. Failure is logged: the
// old file stays in use and nothing is lost.
func (s *Store) maybeCompact() {
	if s.opts.ReadOnly {
		return
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		return
	}
	s.mu.Lock()
	live := int64(s.st.bytes)
	s.mu.Unlock()
	if live > compactMaxLive || fi.Size() < 2*live+s.opts.Reserve+compactSlack {
		return
	}
	now := s.opts.Now()
	if !s.lastCompact.IsZero() && now.Sub(s.lastCompact) < compactEvery {
		return
	}
	s.lastCompact = now
	start := time.Now()
	if err := s.compact(); err != nil {
		s.log.Warn("could not give the outbox's free space back; it is reused as it is", "err", err)
		return
	}
	after, _ := os.Stat(s.path)
	if after != nil {
		s.log.Info("outbox drained: compacted its file to give the space back",
			"before", fi.Size(), "after", after.Size(), "took", time.Since(start).Round(time.Millisecond))
	}
}

// compact copies every bucket into "<path>.compact", makes it durable,
// renames it over path and switches to it. The new file is locked before the
// rename, so no other process ever opens an unlocked outbox.
func (s *Store) compact() (err error) {
	tmp := s.path + ".compact"
	if err := os.Remove(tmp); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("store: compact: remove leftover %s: %w", tmp, err)
	}
	var o opened
	dst, err := bolt.Open(tmp, 0o600, boltOptions(s.opts, &o))
	if err != nil {
		return fmt.Errorf("store: compact: %w", err)
	}
	defer func() {
		if err != nil {
			dst.Close()
			os.Remove(tmp)
		}
	}()
	if err := bolt.Compact(dst, s.db, 4<<20); err != nil {
		return fmt.Errorf("store: compact: copy: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("store: compact: %w", err)
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		// The new file is in place and complete; only the rename's
		// durability is in doubt, and either file is a whole outbox.
		s.log.Warn("compacted outbox: directory sync failed", "err", err)
	}
	s.dbMu.Lock()
	old := s.db
	s.db = dst
	s.dbMu.Unlock()
	s.space.file, s.space.reserved, s.space.short = o.f, 0, false
	s.keepReserve()
	if cerr := old.Close(); cerr != nil {
		s.log.Warn("compacted outbox: closing the old file", "err", cerr)
	}
	return nil
}
