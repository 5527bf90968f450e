package store_test

import (
	"fmt"
	"testing"

	"github.com/edge-agent/edge-agent/store"
)

// benchBatch reuses one slice of entries, renumbering it for each Append, so
// the allocations reported are the store's own.
func benchBatch(tb testing.TB, n int) []store.Entry {
	tb.Helper()
	return entries(tb, 0, n, 300)
}

func renumber(es []store.Entry, after uint64) {
	for i := range es {
		es[i].Seq = after + 1 + uint64(i)
	}
}

// BenchmarkAppend measures durable appends (fsync on) of ~300-byte records.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 64, 256, 1024} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			opts, _ := testOptions(b, 1)
			s := openStore(b, dbPath(b), opts)
			es := benchBatch(b, n)
			b.ReportAllocs()
			b.SetBytes(int64(300 * n))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				renumber(es, s.Head().Seq)
				if _, err := s.Append(es, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkAppendEvicting is BenchmarkAppend at a full quota, so every Append
// also evicts a batch's worth of old records.
func BenchmarkAppendEvicting(b *testing.B) {
	const n = 256
	opts, _ := testOptions(b, 1)
	opts.MaxBytes = 8 << 20
	s := openStore(b, dbPath(b), opts)
	es := benchBatch(b, n)
	for s.Head().Seq*300 < uint64(opts.MaxBytes) {
		renumber(es, s.Head().Seq)
		mustAppend(b, s, es, nil)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		renumber(es, s.Head().Seq)
		if _, err := s.Append(es, s.PendingGaps()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAckDelete measures an Ack that deletes a 256-record batch acked
// by the only uplink.
func BenchmarkAckDelete(b *testing.B) {
	const n = 256
	opts, _ := testOptions(b, 1)
	opts.Uplinks = []string{"mqtt"}
	s := openStore(b, dbPath(b), opts)
	q := s.Queue("mqtt")
	es := benchBatch(b, n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		renumber(es, s.Head().Seq)
		mustAppend(b, s, es, nil)
		b.StartTimer()
		if err := q.Ack(s.Head().Seq); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}
