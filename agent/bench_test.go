package agent

import (
	"context"
	"testing"
	"time"
)

// TestBenchRuns drives Bench briefly: it must store records and report sane
// figures. The figures themselves are measured by `edge-agent bench`.
func TestBenchRuns(t *testing.T) {
	res, err := Bench(context.Background(), BenchOpts{Dir: t.TempDir(), Duration: 700 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records < 100 || res.PerSecond <= 0 || res.P99 < res.P50 || res.P50 <= 0 || res.CPUPerRecord <= 0 || res.PeakRSSBytes <= 0 {
		t.Fatalf("implausible bench result: %+v", res)
	}
}

// TestBenchAtARate drives Bench at a set rate with its acking uplink: the
// figures a user reads for their card must be there and plausible.
func TestBenchAtARate(t *testing.T) {
	interval := 100 * time.Millisecond
	res, err := Bench(context.Background(), BenchOpts{Dir: t.TempDir(), Duration: 2 * time.Second, Rate: 200, CommitInterval: &interval})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	switch {
	case res.Records < 100 || res.Records > 500:
		t.Fatalf("%d records in %v at 200/s", res.Records, res.Elapsed)
	case res.DiskPerRecord <= 0 || res.StorePerRecord <= 0:
		t.Fatalf("no bytes written counted: %+v", res)
	case res.CommitsPerSec < 2 || res.CommitsPerSec > 20 || res.FsyncsPerSec != 2*res.CommitsPerSec:
		t.Fatalf("%.1f commits/s with a 100ms window, %.1f fsyncs/s", res.CommitsPerSec, res.FsyncsPerSec)
	case res.SignCPU <= 0 || res.SignCPUParallel <= 0 || res.CPUPerRecord < res.SignCPU/2:
		t.Fatalf("implausible CPU figures: %+v", res)
	}
}
