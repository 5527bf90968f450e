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

// BenchmarkPipeline is the pipeline at full speed, for profiling:
// go test -run '^$' -bench Pipeline -cpuprofile cpu.out ./agent
func BenchmarkPipeline(b *testing.B) {
	st := openStore(b, 0)
	p, err := NewPipeline(PipelineOpts{Signer: testSigner(b), Outbox: st, BatchMax: 256, QueueLen: 256})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	runPipeline(b, p, counters(b.N))
}
