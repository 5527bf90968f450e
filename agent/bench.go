package agent

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/sim"
)

// BenchResult is what `edge-agent bench` measured.
type BenchResult struct {
	Records       uint64        `json:"records"`
	Elapsed       time.Duration `json:"elapsed_ns"`
	PerSecond     float64       `json:"records_per_second"`
	P50, P99      time.Duration // observation → durable (fsync returned)
	CPUPerRecord  time.Duration `json:"cpu_per_record_ns"` // user+system time of the whole process
	PeakRSSBytes  int64         `json:"peak_rss_bytes"`
	BatchMax      int           `json:"batch_max"`
	SignWorkers   int           `json:"sign_workers"`
	StoreFileSize int64         `json:"store_file_bytes"`
}

// BenchOpts configures Bench.
type BenchOpts struct {
	Dir      string        // scratch directory for the key and the outbox
	Duration time.Duration // how long to drive the pipeline
	Version  string
	BatchMax int // records per group commit; 0 = the config default
	// Progress, if set, is called about once a second with records so far.
	Progress func(elapsed time.Duration, records uint64)
}

// Bench drives the real pipeline — sign, group commit with fsync — at full
// speed from a synthetic source for the given duration. There is no uplink,
// so records stay in the outbox: the figure is "signed and durable".
//
// At saturation the latency from observation to durable is mostly time spent
// queued, so the queue holds one batch: the figure then measures the
// pipeline, not the buffer in front of it.
func Bench(ctx context.Context, o BenchOpts) (BenchResult, error) {
	cfg := config.Default()
	cfg.Device.DataDir = o.Dir
	cfg.Device.Key = "file:" + filepath.Join(o.Dir, "bench.key")
	cfg.Store.Path = filepath.Join(o.Dir, "bench.db")
	cfg.Store.MaxBytes = 4 << 30
	cfg.Status = config.Status{} // nothing to serve while measuring
	if o.BatchMax > 0 {
		cfg.Pipeline.BatchMax = o.BatchMax
	}
	cfg.Pipeline.QueueLen = cfg.Pipeline.BatchMax

	src, err := sim.New("bench", sim.Opts{Kind: sim.KindCounter, Interval: 0})
	if err != nil {
		return BenchResult{}, err
	}
	hist := newLatencyHistogram()
	a, err := New(Options{
		Config: &cfg, Version: o.Version, CreateKey: true,
		Logger:    slog.New(slog.DiscardHandler),
		Drivers:   []drivers.Driver{src},
		OnDurable: hist.observe,
	})
	if err != nil {
		return BenchResult{}, err
	}

	before := rusage()
	start := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-tick.C:
			if o.Progress != nil {
				_, _, stored := a.pipeline.Counts()
				o.Progress(time.Since(start), stored)
			}
		case err = <-done:
			running = false
		}
	}
	elapsed := time.Since(start)
	after := rusage()
	if err != nil {
		return BenchResult{}, err
	}
	_, _, stored := a.pipeline.Counts()
	res := BenchResult{
		Records:      stored,
		Elapsed:      elapsed,
		PerSecond:    float64(stored) / elapsed.Seconds(),
		P50:          hist.quantile(0.50),
		P99:          hist.quantile(0.99),
		PeakRSSBytes: int64(after.Maxrss) * 1024,
		BatchMax:     cfg.Pipeline.BatchMax,
		SignWorkers:  a.pipeline.o.SignWorkers,
	}
	if stored > 0 {
		cpu := cpuTime(after) - cpuTime(before)
		res.CPUPerRecord = cpu / time.Duration(stored)
	}
	if st, err := fileSize(cfg.Store.Path); err == nil {
		res.StoreFileSize = st
	}
	return res, nil
}

func rusage() syscall.Rusage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru
}

func cpuTime(ru syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// latencyHistogram counts latencies in 10 µs buckets up to 2 s, in constant
// memory however long the bench runs.
type latencyHistogram struct {
	mu      sync.Mutex
	buckets []uint64
	over    uint64
	n       uint64
}

const latencyBucket = 10 * time.Microsecond

func newLatencyHistogram() *latencyHistogram {
	return &latencyHistogram{buckets: make([]uint64, int(2*time.Second/latencyBucket))}
}

func (h *latencyHistogram) observe(observed []time.Time, durable time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range observed {
		i := int(durable.Sub(t) / latencyBucket)
		switch {
		case i < 0:
			i = 0
			fallthrough
		case i < len(h.buckets):
			h.buckets[i]++
		default:
			h.over++
		}
		h.n++
	}
}

// quantile returns the upper edge of the bucket holding quantile q.
func (h *latencyHistogram) quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	var seen uint64
	for i, c := range h.buckets {
		seen += c
		if seen > rank {
			return time.Duration(i+1) * latencyBucket
		}
	}
	return 2 * time.Second
}

// String is the one-line summary bench prints.
func (r BenchResult) String() string {
	return fmt.Sprintf("%d records in %.1fs: %.0f records/s signed and durable, observation→durable p50 %v p99 %v, CPU %v/record, peak RSS %.1f MB",
		r.Records, r.Elapsed.Seconds(), r.PerSecond, r.P50, r.P99, r.CPUPerRecord.Round(100*time.Nanosecond), float64(r.PeakRSSBytes)/1e6)
}
