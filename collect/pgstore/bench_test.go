package pgstore_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/collect/fleet"
)

// BenchmarkCommit: fresh records and the same records replayed, in batches
// of 1,000 (the collector's batch bound), into one store; reports µs per
// record and the on-disk footprint per record.
//
//	go test -run '^$' -bench Commit -benchtime 1x ./collect/pgstore
func BenchmarkCommit(b *testing.B) {
	url := database(b)
	s := open(b, url)
	const devices, per, batch = 100, 200, 1000
	var recs []*attest.Record
	for range devices {
		d, _ := fleet.NewDevice(rand.Reader)
		recs = append(recs, decode(b, chainOf(b, d, per)...)...)
	}
	ctx := context.Background()
	commit := func() time.Duration {
		t0 := time.Now()
		for i := 0; i < len(recs); i += batch {
			if _, err := s.Commit(ctx, recs[i:min(i+batch, len(recs))], time.Now()); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(t0)
	}
	for b.Loop() {
		fresh := commit()
		replay := commit()
		n := float64(len(recs))
		b.ReportMetric(fresh.Seconds()*1e6/n, "µs/fresh-record")
		b.ReportMetric(replay.Seconds()*1e6/n, "µs/replayed-record")
		b.ReportMetric(n/fresh.Seconds(), "fresh-records/s")
		f, err := s.Footprint(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var raw int
		for _, r := range recs {
			raw += len(r.Raw)
		}
		b.ReportMetric(float64(raw)/n, "cose-bytes/record")
		b.ReportMetric(float64(f.RecordBytes)/float64(f.Records), "records-table-bytes/record")
		b.ReportMetric(float64(f.SeqBytes)/float64(f.Seqs), "seqs-table-bytes/record")
		b.ReportMetric(float64(f.Records+f.Seqs)/n, "rows/record")
	}
}
