package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/edge-agent/edge-agent/seqrange"
)

// SalvageReport is what Salvage recovered from a damaged outbox file.
type SalvageReport struct {
	Chain    [16]byte // the file's chain id; zeros when meta is unreadable
	HeadSeq  uint64   // the file's head; 0 when meta is unreadable
	Intact   int      // records handed to fn
	Damaged  []Range  // seqs whose record failed its checksum or sat on an unreadable page
	Unsynced bool     // meta could not be read: the chain and head are unknown
}

// errStop carries fn's error out of a read transaction.
type errStop struct{ err error }

func (e errStop) Error() string { return e.err.Error() }

// Salvage reads every intact record of an outbox file that failed its
// consistency check (one that Open moved aside to "<path>.corrupt-…"), oldest
// first, so that one damaged record does not strand the others: each record
// whose checksum holds is handed to fn, the rest are reported. The records
// are signed, so a verifier decides what they are worth; what is missing
// shows as gaps in their chain. It opens the file read-only and takes a
// shared lock. A file bbolt cannot open at all (both meta pages destroyed)
// is an error: nothing can be read from it here.
func Salvage(path string, fn func(Record) error) (SalvageReport, error) {
	var rep SalvageReport
	opts := Options{ReadOnly: true}.withDefaults()
	var o opened
	var db *bolt.DB
	err := protect(func() (err error) {
		db, err = bolt.Open(path, 0o600, boltOptions(opts, &o))
		return err
	})
	if err != nil {
		if o.f != nil && db == nil {
			_ = o.f.Close()
		}
		return rep, fmt.Errorf("store: salvage %s: bbolt cannot open it, so no record can be read from it: %w", path, err)
	}
	defer db.Close()

	rep.Unsynced = protect(func() error {
		return db.View(func(tx *bolt.Tx) error {
			meta := tx.Bucket([]byte(bucketMeta))
			if meta == nil {
				return errors.New("no meta")
			}
			chain, head := meta.Get([]byte(keyChain)), meta.Get([]byte(keyHead))
			if len(chain) != 16 || len(head) < 8 {
				return errors.New("meta malformed")
			}
			copy(rep.Chain[:], chain)
			rep.HeadSeq = binary.BigEndian.Uint64(head)
			return nil
		})
	}) != nil

	// Walk in read transactions that a damaged page may end (a panic or a
	// fault, which protect turns into an error); then skip ahead in growing
	// steps until a seek lands on readable pages again.
	var after uint64
	step := uint64(1)
	for tries := 0; tries < 64; tries++ {
		err := protect(func() error {
			return db.View(func(tx *bolt.Tx) error {
				recs := tx.Bucket([]byte(bucketRecords))
				if recs == nil {
					return nil
				}
				c := recs.Cursor()
				for k, v := c.Seek(seqKey(after + 1)); k != nil; k, v = c.Next() {
					if len(k) != 8 {
						continue
					}
					seq := binary.BigEndian.Uint64(k)
					after, step = seq, 1
					if len(v) < valueHeader || binary.BigEndian.Uint32(v) != recordCRC(k, v[4:]) {
						rep.Damaged = seqrange.Union(rep.Damaged, []Range{{From: seq, To: seq}})
						continue
					}
					if err := fn(Record{Seq: seq, Data: bytes.Clone(v[valueHeader:])}); err != nil {
						return errStop{err}
					}
					rep.Intact++
				}
				return nil
			})
		})
		var stop errStop
		switch {
		case err == nil:
			return rep, nil
		case errors.As(err, &stop):
			return rep, stop.err
		case rep.HeadSeq > 0 && after >= rep.HeadSeq:
			return rep, nil
		}
		from := after + 1
		after += step
		step *= 2
		rep.Damaged = seqrange.Union(rep.Damaged, []Range{{From: from, To: after}})
	}
	return rep, nil
}
