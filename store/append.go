package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/edge-agent/edge-agent/seqrange"
)

// Append stores entries and advances the head to the last of them in one
// transaction, and returns after the commit: then they are durable. The
// entries must continue the head exactly (head.Seq+1, +2, …), else Append
// writes nothing and returns ErrNotContiguous.
//
// announced names the gaps that agent.gap records in this very batch
// announce; they leave the pending gaps in the same transaction.
//
// When MaxBytes would be exceeded, the oldest stored records are evicted
// (acked or not), their seqs join the pending gaps, and the evicted ranges are
// returned. Records of this batch are evicted only when the batch alone is
// larger than the quota: then its oldest entries are dropped too (never
// written) until the rest fits, the head still advances to the last entry,
// and the dropped seqs are reported like any other eviction — so the chain
// stays whole and a later agent.gap record explains the hole. That is not an
// error; it is logged at WARN.
func (s *Store) Append(entries []Entry, announced []Range) (evicted []Range, err error) {
	if s.opts.ReadOnly {
		return nil, fmt.Errorf("store: append: %w", ErrReadOnly)
	}
	for i, e := range entries {
		if len(e.Data) == 0 {
			return nil, fmt.Errorf("store: append: entry %d (seq %d) has no data", i, e.Seq)
		}
	}
	for _, r := range announced {
		if r.From == 0 || r.From > r.To {
			return nil, fmt.Errorf("store: append: announced gap %d-%d is not a seq range", r.From, r.To)
		}
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	st := s.st
	st.gaps = slices.Clone(st.gaps)
	// Acks kept in memory (Options.AckDelay) ride along with this commit.
	var acks map[string]uint64
	ackGen, ackTaken := s.ackGen, time.Now()
	if ackGen != s.ackFlushed {
		acks = maps.Clone(s.acks)
	}
	s.mu.Unlock()

	for i, e := range entries {
		if want := st.head.Seq + 1 + uint64(i); e.Seq != want {
			return nil, fmt.Errorf("store: append: entry %d has seq %d, want %d: %w", i, e.Seq, want, ErrNotContiguous)
		}
	}
	if len(entries) == 0 && len(announced) == 0 {
		return nil, nil
	}

	now := s.opts.Now().UnixNano()
	batchTooBig := false
	var batch uint64
	for _, e := range entries {
		batch += uint64(len(e.Data))
	}
	// The free space left caps the outbox like the quota (space.go).
	limit, byRoom, headroom := uint64(s.opts.MaxBytes), false, uint64(s.opts.EvictHeadroom)
	if room := s.roomLimit(st, batch, len(entries)); room > 0 && (limit == 0 || room < limit) {
		// The quota's headroom could be larger than what the disk holds.
		limit, byRoom, headroom = room, true, min(headroom, room/16)
	}
	var ackDeleted uint64
	err = s.update(func(tx *bolt.Tx) error {
		if acks != nil {
			// Delete what the acks allow first: that may spare an eviction.
			var err error
			if _, ackDeleted, err = putAcks(tx, acks, s.opts.Uplinks, &st); err != nil {
				return err
			}
		}
		recs := tx.Bucket([]byte(bucketRecords))
		recs.FillPercent = 1 // keys only ever go at the end: pack pages full
		batch := batch
		keep := entries
		if limit > 0 && st.bytes+batch > limit {
			// Evict down to a low-water mark below the quota, not just
			// the overflow: at a full quota every batch would otherwise
			// evict a few records and need an agent.gap record of its own.
			rs, n, freed, err := evictOldest(recs, st.bytes+batch-limit+headroom)
			if err != nil {
				return err
			}
			st.count -= n
			st.bytes -= freed
			evicted = rs
			for len(keep) > 0 && st.bytes+batch > limit {
				batchTooBig = true
				batch -= uint64(len(keep[0].Data))
				evicted = seqrange.Union(evicted, []Range{{From: keep[0].Seq, To: keep[0].Seq}})
				keep = keep[1:]
			}
		}

		// bbolt keeps references to keys and values until the commit, so
		// give it two arenas rather than two allocations per record.
		keys := make([]byte, 8*len(keep))
		vals := make([]byte, int(batch)+valueHeader*len(keep))
		for i, e := range keep {
			k := keys[8*i : 8*i+8 : 8*i+8]
			binary.BigEndian.PutUint64(k, e.Seq)
			v := vals[: valueHeader+len(e.Data) : valueHeader+len(e.Data)]
			vals = vals[len(v):]
			putRecordValue(v, k, now, e.Data)
			if err := recs.Put(k, v); err != nil {
				return err
			}
		}
		st.count += uint64(len(keep))
		st.bytes += batch
		if n := len(entries); n > 0 {
			st.head.Seq, st.head.Hash = entries[n-1].Seq, entries[n-1].Hash
		}
		for _, r := range evicted {
			st.evicted += r.To - r.From + 1
		}
		st.evictedRanges += uint64(len(evicted))
		st.gaps = seqrange.Union(seqrange.Subtract(st.gaps, announced), evicted)
		return putState(tx.Bucket([]byte(bucketMeta)), st)
	})
	if err != nil {
		return nil, s.writeErr(fmt.Sprintf("append %d records", len(entries)), err)
	}

	s.keepReserve()
	s.mapped.noteWritten(s, int(ackDeleted)+int(batch))

	s.mu.Lock()
	s.st = st
	if acks != nil {
		s.carriedAcks(ackGen, ackTaken)
	}
	if len(entries) > 0 {
		close(s.changed)
		s.changed = make(chan struct{})
	}
	wasEvicting := s.evicting
	s.evicting = len(evicted) > 0
	s.mu.Unlock()

	switch {
	case byRoom && len(evicted) > 0 && !wasEvicting:
		s.log.Warn("the filesystem is nearly full: evicting the oldest records to make room", "evicted", evicted, "dir", s.space.dir, "min_free", s.opts.MinFree)
	case batchTooBig:
		s.log.Warn("a batch alone exceeds the outbox quota: dropped its oldest records", "evicted", evicted, "max_bytes", s.opts.MaxBytes)
	case len(evicted) > 0 && !wasEvicting:
		s.log.Warn("outbox quota reached: evicting the oldest records until the uplinks catch up", "evicted", evicted, "max_bytes", s.opts.MaxBytes)
	case len(evicted) > 0:
		s.log.Debug("evicted", "ranges", evicted)
	}
	return evicted, nil
}

// writeErr words a failed write transaction.
func (s *Store) writeErr(op string, err error) error {
	switch {
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return ErrClosed
	case errors.Is(err, berrors.ErrMaxSizeReached):
		return fmt.Errorf("store: %s: the outbox file reached its size cap (2×max_bytes+32 MiB): run `edge-agent doctor`: %w", op, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// evictOldest deletes records from the front until at least need bytes of
// Data are freed or none are left. Keys are collected first and deleted after:
// deleting under a bbolt cursor skips keys.
func evictOldest(recs *bolt.Bucket, need uint64) (evicted []Range, n, freed uint64, err error) {
	var seqs []uint64
	c := recs.Cursor()
	for k, v := c.First(); k != nil && freed < need; k, v = c.Next() {
		seqs = append(seqs, binary.BigEndian.Uint64(k))
		freed += uint64(len(v) - valueHeader)
	}
	key := make([]byte, 8) // Delete does not keep the key: one buffer will do
	for _, seq := range seqs {
		binary.BigEndian.PutUint64(key, seq)
		if err := recs.Delete(key); err != nil {
			return nil, 0, 0, err
		}
	}
	if len(seqs) > 0 { // the records are one contiguous run
		evicted = []Range{{From: seqs[0], To: seqs[len(seqs)-1]}}
	}
	return evicted, uint64(len(seqs)), freed, nil
}

// deleteUpTo deletes every record with seq <= upTo, collecting keys before
// deleting them (the cursor trap again).
func deleteUpTo(recs *bolt.Bucket, upTo uint64) (n, freed uint64, err error) {
	var seqs []uint64
	c := recs.Cursor()
	for k, v := c.First(); k != nil && binary.BigEndian.Uint64(k) <= upTo; k, v = c.Next() {
		seqs = append(seqs, binary.BigEndian.Uint64(k))
		freed += uint64(len(v) - valueHeader)
	}
	key := make([]byte, 8)
	for _, seq := range seqs {
		binary.BigEndian.PutUint64(key, seq)
		if err := recs.Delete(key); err != nil {
			return 0, 0, err
		}
	}
	return uint64(len(seqs)), freed, nil
}

// deletable is the highest seq every configured uplink has acked; 0 when no
// uplink is configured (records then stay until evicted).
func deletable(acks map[string]uint64, uplinks []string) uint64 {
	if len(uplinks) == 0 {
		return 0
	}
	low := acks[uplinks[0]]
	for _, u := range uplinks[1:] {
		low = min(low, acks[u])
	}
	return low
}

// deleteAckedAtOpen removes records acked by every configured uplink, which
// happens when an uplink was dropped from the config since the last run.
func (s *Store) deleteAckedAtOpen() error {
	upTo := deletable(s.acks, s.opts.Uplinks)
	if upTo == 0 || s.st.count == 0 {
		return nil
	}
	st := s.st
	st.gaps = slices.Clone(st.gaps)
	errNothing := errors.New("nothing to delete") // rolls back: no commit, no fsync
	err := s.update(func(tx *bolt.Tx) error {
		n, freed, err := deleteUpTo(tx.Bucket([]byte(bucketRecords)), upTo)
		if err != nil {
			return err
		}
		if n == 0 {
			return errNothing
		}
		st.count -= n
		st.bytes -= freed
		return putState(tx.Bucket([]byte(bucketMeta)), st)
	})
	if errors.Is(err, errNothing) {
		return nil
	}
	if err != nil {
		return s.writeErr("delete acked records", err)
	}
	s.st = st
	s.keepReserve()
	return nil
}
