package pgstore_test

import (
	"context"
	"crypto/rand"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/collect/fleet"
)

// BenchmarkCommit: fresh records and the same records replayed, in batches
// of 1,000 (the collector's batch bound), into one store; reports µs per
// record (wall, and the server's CPU) and the on-disk footprint per record.
//
//	go test -run '^$' -bench Commit -benchtime 1x ./collect/pgstore
func BenchmarkCommit(b *testing.B) {
	url := database(b)
	s := open(b, url)
	const devices, per = 100, 200
	batch := 1000
	if v, err := strconv.Atoi(os.Getenv("PG_BATCH")); err == nil {
		batch = v
	}
	var recs []*attest.Record
	for range devices {
		d, _ := fleet.NewDevice(rand.Reader)
		recs = append(recs, decode(b, chainOf(b, d, per)...)...)
	}
	ctx := context.Background()
	// Wall time, and the server's CPU time (its backends stay connected).
	commit := func() (wall, cpu time.Duration) {
		c0, err := srv.CPU()
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		for i := 0; i < len(recs); i += batch {
			if _, err := s.Commit(ctx, recs[i:min(i+batch, len(recs))], time.Now()); err != nil {
				b.Fatal(err)
			}
		}
		wall = time.Since(t0)
		c1, _ := srv.CPU()
		return wall, c1 - c0
	}
	for b.Loop() {
		fresh, freshCPU := commit()
		replay, replayCPU := commit()
		n := float64(len(recs))
		b.ReportMetric(fresh.Seconds()*1e6/n, "µs/fresh-record")
		b.ReportMetric(replay.Seconds()*1e6/n, "µs/replayed-record")
		b.ReportMetric(freshCPU.Seconds()*1e6/n, "postgres-cpu-µs/fresh-record")
		b.ReportMetric(replayCPU.Seconds()*1e6/n, "postgres-cpu-µs/replayed-record")
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
