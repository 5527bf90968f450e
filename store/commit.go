package store

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// This file holds the commit path's economy: acks kept in memory until a
// commit carries them (Options.AckDelay), and the accounting of what each
// commit writes, for the wear figures in `status` and `doctor`.

// dropPageCache drops the clean cached pages at the start of the file once
// Open has checked it. Kernels with large folios for ext4 (6.16 and later)
// keep what bbolt's first write brought in (the two meta pages, the freelist
// and the root, one 16 KiB write) as one folio, and writing one page then
// dirties, accounts and writes back the whole folio: every commit's meta page
// counted 16 KiB. Read back later, they come in as small folios. Only the
// first MiB: dropping a whole large file here raised the open's peak RSS
// (TestOpenCheckDoesNotKeepPagesResident). Failure only costs write volume.
func dropPageCache(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 1<<20, unix.FADV_DONTNEED)
}

// update runs a read-write transaction and, once it has committed, counts
// what bbolt wrote: every page it allocated (data, branch and freelist pages,
// which it writes whole) plus one meta page.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		tx.OnCommit(func() {
			st := tx.Stats()
			s.noteCommit(st.GetPageAlloc() + int64(s.db.Info().PageSize))
		})
		return nil
	})
}

// noteCommit adds one commit of n bytes to the write accounting.
func (s *Store) noteCommit(n int64) {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commits++
	s.writtenBytes += uint64(n)
	s.writes.add(now, n)
}

// writeWindow is the span WriteRate averages over.
const writeWindow = time.Minute

// writeMeter sums bytes per second over the last minute in constant memory.
type writeMeter struct {
	secs  [60]int64 // bytes written in each second, indexed by Unix second mod 60
	stamp [60]int64 // which Unix second each slot holds
	start time.Time // first write, so a young meter averages over its age
}

func (m *writeMeter) add(now time.Time, n int64) {
	if m.start.IsZero() {
		m.start = now
	}
	sec := now.Unix()
	i := sec % int64(len(m.secs))
	if m.stamp[i] != sec {
		m.stamp[i], m.secs[i] = sec, 0
	}
	m.secs[i] += n
}

// rate is bytes per second over the last minute (or since the first write,
// when that is more recent, but over at least one second).
func (m *writeMeter) rate(now time.Time) float64 {
	if m.start.IsZero() {
		return 0
	}
	sec := now.Unix()
	var sum int64
	for i, st := range m.stamp {
		if st > sec-int64(len(m.secs)) && st <= sec {
			sum += m.secs[i]
		}
	}
	span := min(now.Sub(m.start), writeWindow)
	return float64(sum) / max(span.Seconds(), 1)
}

// Writes is what the outbox has written to disk since Open.
type Writes struct {
	Commits   uint64  // bbolt commits, each two fdatasync calls
	Bytes     uint64  // pages written by them, meta pages included
	PerSecond float64 // bytes per second over the last minute
}

// Writes returns the outbox's write accounting since Open.
func (s *Store) Writes() Writes {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	return Writes{Commits: s.commits, Bytes: s.writtenBytes, PerSecond: s.writes.rate(now)}
}

// deferAck notes an ack in memory and makes sure a commit will carry it
// within AckDelay. Called with s.mu held.
func (s *Store) deferAck(name string, upTo uint64) {
	s.acks[name] = upTo
	s.ackGen++
	if s.ackTimer == nil {
		s.ackTimer = time.AfterFunc(s.opts.AckDelay, s.flushAcksLater)
	}
}

// flushAcksLater is the deferred-ack timer's function: it commits the acks
// unless an Append already carried them, and tries again after AckDelay if
// the commit failed.
func (s *Store) flushAcksLater() {
	err := s.flushAcks()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ackTimer = nil
	if s.closed {
		return
	}
	if err != nil {
		s.log.Error("cannot store acknowledgements; retrying (the records stay and may be sent again)", "err", err, "retry_in", s.opts.AckDelay)
	}
	if s.ackGen != s.ackFlushed {
		s.ackTimer = time.AfterFunc(s.opts.AckDelay, s.flushAcksLater)
	}
}

// FlushAcks commits acks that Ack kept in memory (Options.AckDelay). It is
// a no-op when there are none.
func (s *Store) FlushAcks() error {
	if s.opts.ReadOnly {
		return nil
	}
	return s.flushAcks()
}

func (s *Store) flushAcks() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.isClosed() {
		return ErrClosed
	}
	return s.flushAcksLocked()
}

// flushAcksLocked commits the in-memory acks and deletes what every
// configured uplink has now acked. Called with writeMu held.
func (s *Store) flushAcksLocked() error {
	s.mu.Lock()
	if s.ackGen == s.ackFlushed {
		s.mu.Unlock()
		return nil
	}
	st := s.st
	st.gaps = slices.Clone(st.gaps)
	acks, gen := maps.Clone(s.acks), s.ackGen
	s.mu.Unlock()

	var deleted uint64
	err := s.update(func(tx *bolt.Tx) error {
		n, freed, err := putAcks(tx, acks, s.opts.Uplinks, &st)
		deleted = freed
		if err != nil || n == 0 {
			return err
		}
		return putState(tx.Bucket([]byte(bucketMeta)), st)
	})
	if err != nil {
		return s.writeErr("store acknowledgements", err)
	}
	s.mapped.noteWritten(s, int(deleted))
	s.mu.Lock()
	s.st = st
	s.ackFlushed = max(s.ackFlushed, gen)
	s.mu.Unlock()
	return nil
}

// putAcks writes every ack cursor and deletes the records all configured
// uplinks have acked, updating st's counters. It returns how many records
// it deleted and their Data bytes.
func putAcks(tx *bolt.Tx, acks map[string]uint64, uplinks []string, st *state) (n, freed uint64, err error) {
	b := tx.Bucket([]byte(bucketAcks))
	for _, name := range slices.Sorted(maps.Keys(acks)) {
		if err := b.Put([]byte(name), u64(acks[name])); err != nil {
			return 0, 0, err
		}
	}
	n, freed, err = deleteUpTo(tx.Bucket([]byte(bucketRecords)), deletable(acks, uplinks))
	if err != nil {
		return 0, 0, err
	}
	st.count -= n
	st.bytes -= freed
	return n, freed, nil
}

// closeAcks stops the deferred-ack timer and commits what it was waiting
// for, before Close closes the file. Called with writeMu held.
func (s *Store) closeAcks() error {
	s.mu.Lock()
	if s.ackTimer != nil {
		s.ackTimer.Stop()
		s.ackTimer = nil
	}
	s.mu.Unlock()
	if err := s.flushAcksLocked(); err != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("store: close: acknowledgements not stored (those records will be sent again): %w", err)
	}
	return nil
}
