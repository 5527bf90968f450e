package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Queue is one uplink's view of the outbox; it satisfies uplink.Queue. Its
// methods are safe for concurrent use, though an uplink normally drives its
// Queue from one goroutine.
type Queue struct {
	s    *Store
	name string
}

// Queue returns the view for the named uplink. Its ack cursor is persisted
// under that name. Acks from a name not in Options.Uplinks are kept but never
// delete anything.
func (s *Store) Queue(uplink string) *Queue { return &Queue{s: s, name: uplink} }

// Pending returns up to max stored records with seq > after, oldest first.
// Evicted or deleted seqs are simply absent. The Data slices are the
// caller's.
func (q *Queue) Pending(after uint64, max int) ([]Record, error) {
	if max <= 0 {
		return nil, fmt.Errorf("store: pending for %q: max is %d, want at least 1", q.name, max)
	}
	recs, err := q.s.records(after, max)
	if err != nil {
		return nil, fmt.Errorf("store: pending for %q: %w", q.name, err)
	}
	return recs, nil
}

// records reads up to max records after a seq in one short read transaction.
func (s *Store) records(after uint64, max int) ([]Record, error) {
	if after == math.MaxUint64 {
		return nil, nil
	}
	var out []Record
	err := s.view(func(tx *bolt.Tx) error {
		read := 0
		c := tx.Bucket([]byte(bucketRecords)).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			if out == nil {
				out = make([]Record, 0, min(max, 1024))
			}
			// Copy: the mmap'd bytes are only valid inside the transaction.
			out = append(out, Record{Seq: binary.BigEndian.Uint64(k), Data: bytes.Clone(v[valueHeader:])})
			read += len(v)
		}
		s.mapped.note(tx, read)
		return nil
	})
	return out, err
}

// Ack records that this uplink delivered every record with seq <= upTo. It
// is cumulative and idempotent: acking at or below the current cursor does
// nothing and costs nothing. Records every configured uplink has now acked
// are deleted in the same transaction, which has committed when Ack returns
// — unless Options.AckDelay is set: then Ack returns once the cursor moved
// in memory, and a commit within AckDelay stores it.
func (q *Queue) Ack(upTo uint64) error {
	s := q.s
	if s.opts.ReadOnly {
		return fmt.Errorf("store: ack for %q: %w", q.name, ErrReadOnly)
	}
	if s.opts.AckDelay > 0 {
		return q.deferAck(upTo)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	st := s.st
	st.gaps = slices.Clone(st.gaps)
	acks := maps.Clone(s.acks)
	s.mu.Unlock()

	if upTo <= acks[q.name] {
		return nil
	}
	if upTo > st.head.Seq {
		return fmt.Errorf("store: ack for %q up to %d: beyond the head %d, a record the outbox never handed out: this is a bug in the uplink", q.name, upTo, st.head.Seq)
	}
	acks[q.name] = upTo
	var deleted uint64
	err := s.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte(bucketAcks)).Put([]byte(q.name), u64(upTo)); err != nil {
			return err
		}
		n, freed, err := deleteUpTo(tx.Bucket([]byte(bucketRecords)), deletable(acks, s.opts.Uplinks))
		if err != nil || n == 0 {
			return err
		}
		st.count -= n
		st.bytes -= freed
		deleted = freed
		return putState(tx.Bucket([]byte(bucketMeta)), st)
	})
	if err != nil {
		return s.writeErr(fmt.Sprintf("ack for %q up to %d", q.name, upTo), err)
	}
	s.keepReserve()
	// Deleting walked the leaf pages of what it deleted: drop them too.
	s.mapped.noteWritten(s, int(deleted))
	s.mu.Lock()
	s.st, s.acks = st, acks
	s.mu.Unlock()
	if deleted > 0 {
		s.maybeCompact()
	}
	return nil
}

// deferAck is Ack under Options.AckDelay: the cursor moves in memory, where
// Acked and the next commit see it (commit.go). It never waits for a commit.
func (q *Queue) deferAck(upTo uint64) error {
	s := q.s
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case upTo <= s.acks[q.name]:
		return nil
	case upTo > s.st.head.Seq:
		return fmt.Errorf("store: ack for %q up to %d: beyond the head %d, a record the outbox never handed out: this is a bug in the uplink", q.name, upTo, s.st.head.Seq)
	}
	s.deferAck(q.name, upTo)
	return nil
}

// Acked returns the highest seq this uplink has acked, 0 when none.
func (q *Queue) Acked() (uint64, error) {
	s := q.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.acks[q.name], nil
}

// Changed returns a channel closed by the next Append that stores records
// (or by Close). Every caller gets the same channel until then: a broadcast
// with no goroutine per call. Get it before calling Pending so an Append in
// between is not missed.
func (q *Queue) Changed() <-chan struct{} {
	s := q.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}
