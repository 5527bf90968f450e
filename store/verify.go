package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// openOnce opens path once. A damaged file comes back as a corruption for
// Open to move aside; every other failure as an error.
func openOnce(path string, opts Options, log *slog.Logger, rec *Recovery) (*Store, *corruption, error) {
	if !opts.ReadOnly {
		if err := mkdirDurable(filepath.Dir(path)); err != nil {
			return nil, nil, err
		}
	}
	var o opened
	var db *bolt.DB
	err := protect(func() (err error) {
		db, err = bolt.Open(path, 0o600, boltOptions(opts, &o))
		return err
	})
	switch {
	case err == nil:
	case errors.Is(err, errPanicked):
		// bbolt.Open panicked half-way and gave us no DB to close. Drop
		// the flock explicitly: the leaked mapping still references the
		// open file, so closing the fd alone would keep the lock held.
		// The mapping itself leaks, once per recovery.
		if o.f != nil {
			_ = syscall.Flock(int(o.f.Fd()), syscall.LOCK_UN)
			_ = o.f.Close()
		}
		return nil, &corruption{err: err, id: o.id}, nil
	case errors.Is(err, ErrLocked), errors.Is(err, berrors.ErrTimeout):
		return nil, nil, fmt.Errorf("store: open %s: %w", path, ErrLocked)
	case isCorruptOpenErr(err):
		return nil, &corruption{err: fmt.Errorf("%w: %w", ErrCorrupt, err), id: o.id}, nil
	case opts.ReadOnly && errors.Is(err, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("store: open %s: no outbox there (the daemon creates it at its first start): check the path: %w", path, err)
	default:
		return nil, nil, fmt.Errorf("store: open %s: %w", path, err)
	}

	if o.created {
		err := syncDir(filepath.Dir(path))
		if err == nil {
			err = initFile(db, opts, rec)
		}
		if err != nil {
			_ = db.Close()
			_ = os.Remove(path) // empty and ours: leave no half-made file
			return nil, nil, err
		}
	} else if rec != nil {
		// Another process put a new file in place between our rename and
		// our create; it owns the chain now. The ERROR log has the details.
		rec = nil
	}

	var ld loaded
	err = protect(func() error {
		return db.View(func(tx *bolt.Tx) error {
			fi, err := o.f.Stat()
			if err != nil {
				return fmt.Errorf("stat: %w", err)
			}
			return verify(tx, fi.Size(), &ld)
		})
	})
	if err != nil {
		// Safe after a panic too: View's deferred rollback released the
		// transaction before protect recovered.
		_ = db.Close()
		if errors.Is(err, ErrCorrupt) {
			return nil, &corruption{err: err, id: o.id, chain: ld.chain}, nil
		}
		return nil, nil, fmt.Errorf("store: open %s: %w", path, err)
	}

	s := &Store{
		path:      path,
		opts:      opts,
		log:       log,
		db:        db,
		st:        ld.st,
		acks:      ld.acks,
		recovery:  ld.rec,
		changed:   make(chan struct{}),
		lastCheck: CheckResult{At: opts.Now().UTC()},
	}
	if !opts.ReadOnly {
		// The uplink list may have shrunk since the last run: records the
		// remaining uplinks have all acked can go now.
		if err := s.deleteAckedAtOpen(); err != nil {
			_ = db.Close()
			return nil, nil, err
		}
		dropPageCache(o.f)
	}
	s.initSpace(o.f)
	log.Debug("outbox open", "path", path, "head", ld.st.head.Seq, "records", ld.st.count, "bytes", ld.st.bytes, "read_only", opts.ReadOnly)
	return s, nil, nil
}

// initFile lays out a new file with a fresh chain.
func initFile(db *bolt.DB, opts Options, rec *Recovery) error {
	var chain [16]byte
	if _, err := io.ReadFull(opts.Rand, chain[:]); err != nil {
		return fmt.Errorf("store: new chain id: %w", err)
	}
	err := db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket([]byte(bucketMeta))
		if err != nil {
			return err
		}
		for _, name := range []string{bucketRecords, bucketAcks} {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		if err := meta.Put([]byte(keyFormat), u64(formatVersion)); err != nil {
			return err
		}
		if err := meta.Put([]byte(keyChain), chain[:]); err != nil {
			return err
		}
		if rec != nil {
			b, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			if err := meta.Put([]byte(keyRecovery), b); err != nil {
				return err
			}
		}
		return putState(meta, state{})
	})
	if err != nil {
		return fmt.Errorf("store: create outbox: %w", err)
	}
	return nil
}

// putState writes the per-write part of meta.
func putState(meta *bolt.Bucket, st state) error {
	for _, kv := range []struct {
		k string
		v []byte
	}{
		{keyHead, encodeHead(st.head)},
		{keyCount, u64(st.count)},
		{keyBytes, u64(st.bytes)},
		{keyEvicted, u64(st.evicted)},
		{keyEvictedRanges, u64(st.evictedRanges)},
		{keyGaps, encodeRanges(st.gaps)},
	} {
		if err := meta.Put([]byte(kv.k), kv.v); err != nil {
			return err
		}
	}
	return nil
}

func corruptf(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, a...)...)
}

// loaded is what verify read from a file.
type loaded struct {
	chain [16]byte // set first, so a recovery can name the old chain
	st    state
	acks  map[string]uint64
	rec   *Recovery
}

// readState decodes meta, checking each value's shape.
func readState(tx *bolt.Tx, ld *loaded) error {
	meta := tx.Bucket([]byte(bucketMeta))
	if meta == nil {
		return corruptf("bucket %q missing", bucketMeta)
	}
	if c := meta.Get([]byte(keyChain)); len(c) == len(ld.chain) {
		copy(ld.chain[:], c)
	} else {
		return corruptf("chain id missing or malformed")
	}
	f := meta.Get([]byte(keyFormat))
	if len(f) != 8 {
		return corruptf("format version missing")
	}
	switch v := binary.BigEndian.Uint64(f); {
	case v > formatVersion:
		return fmt.Errorf("store: outbox format %d is newer than this edge-agent understands (%d): upgrade edge-agent, or move the file aside to start a new chain", v, formatVersion)
	case v < 1:
		return corruptf("format version %d invalid", v)
	}
	h := meta.Get([]byte(keyHead))
	if len(h) != 40 {
		return corruptf("head missing or malformed")
	}
	ld.st.head = Head{Chain: ld.chain, Seq: binary.BigEndian.Uint64(h)}
	copy(ld.st.head.Hash[:], h[8:])
	for _, c := range []struct {
		k string
		v *uint64
	}{
		{keyCount, &ld.st.count},
		{keyBytes, &ld.st.bytes},
		{keyEvicted, &ld.st.evicted},
		{keyEvictedRanges, &ld.st.evictedRanges},
	} {
		b := meta.Get([]byte(c.k))
		if len(b) != 8 {
			return corruptf("counter %q missing or malformed", c.k)
		}
		*c.v = binary.BigEndian.Uint64(b)
	}
	g := meta.Get([]byte(keyGaps))
	if g == nil || len(g)%16 != 0 {
		return corruptf("pending gaps missing or malformed")
	}
	ld.st.gaps = decodeRanges(g)
	for i, r := range ld.st.gaps {
		if r.From == 0 || r.From > r.To || r.To > ld.st.head.Seq || (i > 0 && r.From <= ld.st.gaps[i-1].To+1) {
			return corruptf("pending gap %d-%d out of order or beyond the head %d", r.From, r.To, ld.st.head.Seq)
		}
	}
	if b := meta.Get([]byte(keyRecovery)); b != nil {
		ld.rec = new(Recovery)
		if err := json.Unmarshal(b, ld.rec); err != nil {
			return corruptf("recovery note: %v", err)
		}
	}
	acks := tx.Bucket([]byte(bucketAcks))
	if acks == nil {
		return corruptf("bucket %q missing", bucketAcks)
	}
	ld.acks = make(map[string]uint64)
	return acks.ForEach(func(k, v []byte) error {
		if len(v) != 8 {
			return corruptf("ack of uplink %q malformed", k)
		}
		ld.acks[string(k)] = binary.BigEndian.Uint64(v)
		if ld.acks[string(k)] > ld.st.head.Seq {
			return corruptf("uplink %q acked %d, beyond the head %d", k, ld.acks[string(k)], ld.st.head.Seq)
		}
		return nil
	})
}

// verify is the full consistency check: the file covers bbolt's pages, meta
// is well formed, every record's CRC holds, the records are one contiguous
// run ending at or before the head, the counters match them, and bbolt's own
// page check passes. Touching every page here first also matters for safety:
// tx.Check runs in its own goroutine, where a fault would not be recovered.
func verify(tx *bolt.Tx, fileSize int64, ld *loaded) error {
	if fileSize < tx.Size() {
		return corruptf("file is %d bytes but its pages end at %d: truncated", fileSize, tx.Size())
	}
	if err := readState(tx, ld); err != nil {
		return err
	}
	// Touch every meta page here, where a fault is recovered (see above).
	if err := tx.Bucket([]byte(bucketMeta)).ForEach(func(k, v []byte) error { return nil }); err != nil {
		return err
	}
	recs := tx.Bucket([]byte(bucketRecords))
	if recs == nil {
		return corruptf("bucket %q missing", bucketRecords)
	}
	// The walks below touch every page of a file that may be hundreds of
	// MiB: keep them from all staying resident (see mapped.go).
	var walked int
	var n, total, first, last uint64
	c := recs.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if walked += len(v); walked > dropMappedAfter {
			dropMapped(tx)
			walked = 0
		}
		if len(k) != 8 || len(v) < valueHeader {
			return corruptf("record key %x malformed", k)
		}
		seq := binary.BigEndian.Uint64(k)
		if binary.BigEndian.Uint32(v) != recordCRC(k, v[4:]) {
			return corruptf("record %d: checksum mismatch", seq)
		}
		if n == 0 {
			first = seq
		} else if seq != last+1 {
			return corruptf("records jump from %d to %d", last, seq)
		}
		last = seq
		n++
		total += uint64(len(v) - valueHeader)
	}
	switch {
	case n > 0 && (first == 0 || last > ld.st.head.Seq):
		return corruptf("records %d-%d outside the chain (head %d)", first, last, ld.st.head.Seq)
	case n != ld.st.count || total != ld.st.bytes:
		return corruptf("meta counts %d records of %d bytes, the file holds %d of %d", ld.st.count, ld.st.bytes, n, total)
	}
	errs := drainCheck(tx)
	if len(errs) > 0 {
		return corruptf("bbolt check: %w", errors.Join(errs...))
	}
	return nil
}

// sameState reports whether what is on disk matches the in-memory copy.
func sameState(a, b state) bool {
	return a.head == b.head && a.count == b.count && a.bytes == b.bytes &&
		a.evicted == b.evicted && a.evictedRanges == b.evictedRanges && slices.Equal(a.gaps, b.gaps)
}
