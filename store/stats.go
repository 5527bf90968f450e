package store

import (
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Stats returns a consistent snapshot of the outbox, read in one short
// transaction.
func (s *Store) Stats() (Stats, error) {
	var out Stats
	err := s.view(func(tx *bolt.Tx) error {
		var ld loaded
		if err := readState(tx, &ld); err != nil {
			return err
		}
		st := ld.st
		out = Stats{
			Records:       int64(st.count),
			Bytes:         int64(st.bytes),
			MaxBytes:      s.opts.MaxBytes,
			HeadSeq:       st.head.Seq,
			Chain:         ld.chain,
			Evicted:       st.evicted,
			EvictedRanges: st.evictedRanges,
			PendingGaps:   st.gaps,
			Recovery:      ld.rec,
		}
		if k, v := tx.Bucket([]byte(bucketRecords)).Cursor().First(); len(k) == 8 && len(v) >= valueHeader {
			out.OldestSeq = binary.BigEndian.Uint64(k)
			out.OldestAppended = time.Unix(0, int64(binary.BigEndian.Uint64(v[4:12]))).UTC()
		}
		s.mu.Lock()
		for name, seq := range s.acks { // acks a commit has yet to carry (AckDelay)
			ld.acks[name] = max(ld.acks[name], seq)
		}
		s.mu.Unlock()
		names := slices.Clone(s.opts.Uplinks)
		var extra []string
		for name := range ld.acks {
			if !slices.Contains(names, name) {
				extra = append(extra, name)
			}
		}
		sort.Strings(extra)
		for i, name := range append(names, extra...) {
			u := UplinkStats{Name: name, Configured: i < len(s.opts.Uplinks), Acked: ld.acks[name]}
			// Records are one contiguous run [oldest, head].
			if st.count > 0 {
				u.Backlog = int64(st.head.Seq - max(u.Acked, out.OldestSeq-1))
			}
			out.Uplinks = append(out.Uplinks, u)
		}
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("store: stats: %w", err)
	}
	if fi, err := os.Stat(s.path); err == nil {
		out.FileBytes = fi.Size()
	}
	s.mu.Lock()
	out.LastCheck = s.lastCheck
	s.mu.Unlock()
	out.Writes = s.Writes()
	return out, nil
}

// recordsChunk bounds each read transaction of Records, so a slow fn (an
// export to a USB stick) never holds one open for long.
const recordsChunk = 256

// Records calls fn for every stored record in seq order, stopping at the
// first error fn returns. It reads in short transactions, so records
// appended meanwhile are included and records deleted meanwhile may be
// missing; seqs still only increase. The Data slices are fn's to keep.
func (s *Store) Records(fn func(Record) error) error {
	var after uint64
	for {
		recs, err := s.records(after, recordsChunk)
		if err != nil {
			return fmt.Errorf("store: records after %d: %w", after, err)
		}
		if len(recs) == 0 {
			return nil
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		after = recs[len(recs)-1].Seq
	}
}

// Check runs the full consistency check that Open runs, and also compares
// the file with the in-memory head and counters. It blocks writers while it
// runs (bbolt's check is unsafe alongside a writer). Failures wrap
// ErrCorrupt; a writable Open will move such a file aside.
func (s *Store) Check() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.isClosed() {
		return ErrClosed
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("store: check %s: %w", s.path, err)
	}
	err = protect(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			var ld loaded
			if err := verify(tx, fi.Size(), &ld); err != nil {
				return err
			}
			s.mu.Lock()
			mem := s.st
			s.mu.Unlock()
			if !sameState(ld.st, mem) {
				return corruptf("file says head %d, %d records of %d bytes; memory says head %d, %d of %d",
					ld.st.head.Seq, ld.st.count, ld.st.bytes, mem.head.Seq, mem.count, mem.bytes)
			}
			return nil
		})
	})
	res := CheckResult{At: s.opts.Now().UTC()}
	if err != nil {
		err = fmt.Errorf("store: check %s: %w", s.path, err)
		res.Err = err.Error()
		s.log.Error("outbox failed its consistency check: the daemon moves it aside at its next start", "err", err)
	}
	s.mu.Lock()
	s.lastCheck = res
	s.mu.Unlock()
	return err
}
