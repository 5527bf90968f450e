package store

import (
	"encoding/binary"
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
	if s.ackGen == s.ackFlushed {
		s.ackSince = time.Now()
	}
	s.acks[name] = upTo
	s.ackGen++
	if s.ackTimer == nil {
		s.ackTimer = time.AfterFunc(s.opts.AckDelay, s.flushAcksLater)
	}
}

// carriedAcks records that a commit stored the acks up to generation gen,
// taken at snapshot time. Called with s.mu held.
func (s *Store) carriedAcks(gen uint64, snapshot time.Time) {
	if gen <= s.ackFlushed {
		return
	}
	s.ackFlushed = gen
	if s.ackGen != gen {
		s.ackSince = snapshot // the ones still pending came after it
	}
}

// flushAcksLater is the deferred-ack timer's function: when the oldest ack
// no commit has carried is AckDelay old, it commits the acks; while Appends
// keep carrying them it only re-arms. A failed commit is retried after
// AckDelay.
func (s *Store) flushAcksLater() {
	s.mu.Lock()
	s.ackTimer = nil
	if s.closed || s.ackGen == s.ackFlushed {
		s.mu.Unlock()
		return
	}
	if wait := s.opts.AckDelay - time.Since(s.ackSince); wait > 0 {
		s.ackTimer = time.AfterFunc(wait, s.flushAcksLater)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()

	err := s.flushAcks()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if err != nil {
		s.log.Error("cannot store acknowledgements; retrying (the records stay and may be sent again)", "err", err, "retry_in", s.opts.AckDelay)
		s.ackSince = time.Now()
	}
	if s.ackGen != s.ackFlushed && s.ackTimer == nil {
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
	acks, gen, taken := maps.Clone(s.acks), s.ackGen, time.Now()
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
	s.keepReserve()
	s.mapped.noteWritten(s, int(deleted))
	s.mu.Lock()
	s.st = st
	s.carriedAcks(gen, taken)
	s.mu.Unlock()
	if deleted > 0 {
		s.maybeCompact() // a drain can leave the file mostly free (compact.go)
	}
	return nil
}

// deleteMinBytes is how many bytes of acked records a deferred-ack commit
// lets pile up before it deletes them. Deleting a few records rewrites the
// first leaf page; deleting a few pages' worth at once frees whole pages,
// which costs nothing beyond the branch page the commit writes anyway.
const deleteMinBytes = 16 << 10

// putAcks writes every ack cursor and deletes the records all configured
// uplinks have acked once there are deleteMinBytes of them, updating st's
// counters. It returns how many records it deleted and their Data bytes.
func putAcks(tx *bolt.Tx, acks map[string]uint64, uplinks []string, st *state) (n, freed uint64, err error) {
	b := tx.Bucket([]byte(bucketAcks))
	for _, name := range slices.Sorted(maps.Keys(acks)) {
		if err := b.Put([]byte(name), u64(acks[name])); err != nil {
			return 0, 0, err
		}
	}
	recs := tx.Bucket([]byte(bucketRecords))
	upTo := deletable(acks, uplinks)
	var acked int
	c := recs.Cursor()
	for k, v := c.First(); k != nil && binary.BigEndian.Uint64(k) <= upTo && acked < deleteMinBytes; k, v = c.Next() {
		acked += len(k) + len(v)
	}
	if acked < deleteMinBytes {
		return 0, 0, nil
	}
	n, freed, err = deleteUpTo(recs, upTo)
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
