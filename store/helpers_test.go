package store_test

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/store"
	"github.com/edge-agent/edge-agent/store/storetest"
	"github.com/edge-agent/edge-agent/uplink"
)

// The real store is the uplink.Queue the transports are written against.
var _ uplink.Queue = (*store.Queue)(nil)

// testClock is a settable clock; tests advance it by hand.
type testClock struct{ t time.Time }

func (c *testClock) Now() time.Time { return c.t }

func testOptions(tb testing.TB, seed uint64) (store.Options, *testClock) {
	tb.Helper()
	clk := &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	return store.Options{
		Rand: rand.NewChaCha8([32]byte{byte(seed)}),
		Now:  clk.Now,
	}, clk
}

// openStore opens path and runs the consistency check when the test ends.
func openStore(tb testing.TB, path string, opts store.Options) *store.Store {
	tb.Helper()
	return storetest.Open(tb, path, opts)
}

func dbPath(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(tb.TempDir(), "outbox", "outbox.db")
}

// entries makes n entries continuing after seq `after`, each of size bytes,
// whose contents depend on the seq (so a mixed-up record is noticed).
func entries(tb testing.TB, after uint64, n, size int) []store.Entry {
	tb.Helper()
	es := make([]store.Entry, n)
	for i := range es {
		seq := after + 1 + uint64(i)
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(seq*31 + uint64(j))
		}
		binary.BigEndian.PutUint64(data, seq)
		es[i] = store.Entry{Seq: seq, Hash: sha256.Sum256(data), Data: data}
	}
	return es
}

func mustAppend(tb testing.TB, s *store.Store, es []store.Entry, announced []store.Range) []store.Range {
	tb.Helper()
	ev, err := s.Append(es, announced)
	if err != nil {
		tb.Fatalf("Append(%d entries from %d): %v", len(es), es[0].Seq, err)
	}
	return ev
}

// storedSeqs lists every stored seq via Records, checking each record's data
// belongs to its seq.
func storedSeqs(tb testing.TB, s *store.Store) []uint64 {
	tb.Helper()
	var seqs []uint64
	err := s.Records(func(r store.Record) error {
		if len(r.Data) < 8 || binary.BigEndian.Uint64(r.Data) != r.Seq {
			tb.Errorf("record %d holds data of another record", r.Seq)
		}
		seqs = append(seqs, r.Seq)
		return nil
	})
	if err != nil {
		tb.Fatalf("Records: %v", err)
	}
	return seqs
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to && from > 0; s++ {
		out = append(out, s)
	}
	return out
}
