package collect

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/edge-agent/edge-agent/attest"
)

// boltStore is the embedded Store: one collector.db file, one process. A
// running collector holds the file's lock, so `collect status` and `collect
// export` from another process must wait until it stops; the running
// collector's periodic status log and its /metrics are the live view.
type boltStore struct {
	db   *bolt.DB
	path string
}

var _ Store = (*boltStore)(nil)

func openBoltStore(path string) (*boltStore, error) {
	db, err := openDB(path, false)
	if err != nil {
		return nil, err
	}
	return &boltStore{db: db, path: path}, nil
}

func (s *boltStore) Close() error { return s.db.Close() }

// Commit writes the batch in one transaction (group commit: the fsync cost
// is shared by the batch).
func (s *boltStore) Commit(_ context.Context, batch []*attest.Record, at time.Time) ([]Outcome, error) {
	now := at.UnixNano()
	out := make([]Outcome, len(batch))
	err := s.db.Update(func(tx *bolt.Tx) error {
		recs, forks, chains := tx.Bucket(bucketRecords), tx.Bucket(bucketForks), tx.Bucket(bucketChains)
		states := map[string]*chainState{}
		for i, r := range batch {
			ck := string(recordKey(r.KeyID, r.Claims.Chain, 0)[:48])
			cs := states[ck]
			if cs == nil {
				var err error
				if cs, err = getChain(chains, []byte(ck)); err != nil {
					return err
				}
				if cs == nil {
					cs = &chainState{Device: r.DeviceID, FirstSeen: now}
				}
				states[ck] = cs
			}
			cs.LastSeen = now
			key := recordKey(r.KeyID, r.Claims.Chain, r.Claims.Seq)
			h := attest.PayloadHash(r.Payload)
			old := recs.Get(key)
			switch {
			case old == nil:
				if err := recs.Put(key, append(h[:], r.Raw...)); err != nil {
					return err
				}
				cs.Records++
				cs.Bytes += uint64(len(r.Raw))
				cs.Held = addRange(cs.Held, r.Claims.Seq, r.Claims.Seq)
				if g, ok := GapOf(r); ok {
					cs.Announced = addRange(cs.Announced, g.From, g.To)
				}
				if r.Claims.Kind == attest.KindBoot {
					cs.Boots++
				}
				cs.Broken = relink(recs, forks, r.KeyID, r.Claims.Chain, r.Claims.Seq, cs.Broken)
				out[i].Verdict = attest.Accepted
			case len(old) < 32:
				return fmt.Errorf("record %x: %w", key, ErrCorrupt)
			case bytes.Equal(old[:32], h[:]):
				cs.Duplicates++
				out[i].Verdict = attest.Duplicate
			default:
				fk := append(key, h[:]...)
				if forks.Get(fk) != nil {
					cs.Duplicates++
					out[i].Verdict = attest.Duplicate // the same fork again
					continue
				}
				if err := forks.Put(fk, r.Raw); err != nil {
					return err
				}
				cs.Forks++
				cs.Broken = relink(recs, forks, r.KeyID, r.Claims.Chain, r.Claims.Seq, cs.Broken)
				out[i] = Outcome{Verdict: attest.Forked, First: bytes.Clone(old[32:])}
			}
		}
		for k, cs := range states {
			if err := putChain(chains, []byte(k), cs); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("collect: commit %d records: %w", len(batch), err)
	}
	return out, nil
}

// relink recomputes the link state of seqs s and s+1 after a record or a
// fork variant for s was stored, whatever order they arrived in. As in
// attest.Audit, seq q is broken when q-1 is held and some variant of q
// (the stored record or a fork) has a prev matching no variant of q-1.
func relink(recs, forks *bolt.Bucket, kid []byte, chain [16]byte, s uint64, broken []uint64) []uint64 {
	for _, q := range []uint64{s, s + 1} {
		if q < 2 {
			continue
		}
		before := variants(recs, forks, kid, chain, q-1)
		now := variants(recs, forks, kid, chain, q)
		bad := false
		if len(before) > 0 {
			for _, v := range now {
				linked := false
				for _, p := range before {
					linked = linked || p.hash == v.prev
				}
				bad = bad || !linked
			}
		}
		broken = setSeq(broken, q, bad)
	}
	return broken
}

type linkVariant struct{ hash, prev [32]byte }

// variants are the stored record of seq q and its fork variants.
func variants(recs, forks *bolt.Bucket, kid []byte, chain [16]byte, q uint64) []linkVariant {
	key := recordKey(kid, chain, q)
	v := recs.Get(key)
	if len(v) <= 32 {
		return nil
	}
	var out []linkVariant
	add := func(raw []byte) {
		if r, err := attest.Decode(raw); err == nil {
			out = append(out, linkVariant{hash: attest.PayloadHash(r.Payload), prev: r.Claims.Prev})
		}
	}
	add(v[32:])
	c := forks.Cursor()
	for k, fv := c.Seek(key); k != nil && bytes.HasPrefix(k, key); k, fv = c.Next() {
		add(fv)
	}
	return out
}

func setSeq(list []uint64, q uint64, on bool) []uint64 {
	for i, x := range list {
		if x == q {
			if on {
				return list
			}
			return append(list[:i], list[i+1:]...)
		}
	}
	if on {
		return append(list, q)
	}
	return list
}

func (s *boltStore) Summary(context.Context) ([]DeviceSummary, error) {
	var out []DeviceSummary
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = readSummaries(tx)
		return err
	})
	return out, err
}

func (s *boltStore) Forks(context.Context) ([][2][]byte, error) {
	var out [][2][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		recs := tx.Bucket(bucketRecords)
		return tx.Bucket(bucketForks).ForEach(func(k, v []byte) error {
			first := recs.Get(k[:56])
			if len(first) < 32 {
				return fmt.Errorf("fork %x without its first record: %w", k, ErrCorrupt)
			}
			out = append(out, [2][]byte{bytes.Clone(first[32:]), bytes.Clone(v)})
			return nil
		})
	})
	return out, err
}

func (s *boltStore) Export(_ context.Context, w io.Writer) (int, error) {
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = exportTx(tx, w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("collect: export: %w", err)
	}
	return n, nil
}
