package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/keys"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/sim"
	"github.com/edge-agent/edge-agent/store"
	"github.com/edge-agent/edge-agent/uplink"
)

// BenchResult is what `edge-agent bench` measured. The per-record figures
// cover the steady part of the run: from the end of a warm-up to the stop.
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

	Rate           float64       `json:"rate"` // records/s asked for; 0 = full speed
	CommitInterval time.Duration `json:"commit_interval_ns"`
	DiskPerRecord  float64       `json:"disk_bytes_per_record"`  // /proc/self/io write_bytes
	StorePerRecord float64       `json:"store_bytes_per_record"` // the pages the outbox's commits wrote
	FsyncsPerSec   float64       `json:"fsyncs_per_second"`      // the outbox's, two per commit
	CommitsPerSec  float64       `json:"commits_per_second"`
	SignCPU        time.Duration `json:"sign_cpu_ns"` // one signature alone on one thread, measured in this run
	// SignCPUParallel is one signature's CPU when SignWorkers sign at once,
	// as the pipeline does at full speed: cores that share caches (or a
	// host's other guests) make each slower than one alone.
	SignCPUParallel time.Duration `json:"sign_cpu_parallel_ns"`
	// Key: the key URI's backend and how records were signed (#13), and
	// the mean size of a record as it goes on the wire.
	KeyBackend       string  `json:"key_backend"`
	SessionBindings  int64   `json:"session_bindings"` // hardware signatures made (0: every record signed directly)
	BytesPerRecord   float64 `json:"bytes_per_record"`
	HardwareSignedMs float64 `json:"last_hardware_sign_ms,omitempty"`
}

// BenchOpts configures Bench.
type BenchOpts struct {
	Dir      string        // scratch directory for the key and the outbox
	Duration time.Duration // how long to drive the pipeline
	Version  string
	BatchMax int // records per group commit; 0 = the config default
	// Rate, when more than 0, drives the pipeline at this many records a
	// second from a simulated LoRa gateway, with an uplink that acks every
	// record as soon as it is stored (a broker that PUBACKs at once), so
	// the acks and deletes are measured too. 0 = full speed, no uplink.
	Rate float64
	// CommitInterval overrides pipeline.commit_interval when set; nil keeps
	// the config default.
	CommitInterval *time.Duration
	// Key is the device key URI; "" = a file: key created in Dir. A tpm: or
	// ecc608: key is created if missing and signs session bindings.
	Key string
	// Progress, if set, is called about once a second with records so far.
	Progress func(elapsed time.Duration, records uint64)
}

// Bench drives the real pipeline — sign, group commit with fsync — from a
// synthetic source for the given duration, at full speed or at o.Rate.
// At full speed there is no uplink, so records stay in the outbox: the figure
// is "signed and durable".
//
// At saturation the latency from observation to durable is mostly time spent
// queued, so the queue holds one batch: the figure then measures the
// pipeline, not the buffer in front of it.
func Bench(ctx context.Context, o BenchOpts) (BenchResult, error) {
	cfg := config.Default()
	cfg.Device.DataDir = o.Dir
	cfg.Device.Key = "file:" + filepath.Join(o.Dir, "bench.key")
	if o.Key != "" {
		cfg.Device.Key = o.Key
	}
	cfg.Store.Path = filepath.Join(o.Dir, "bench.db")
	cfg.Store.MaxBytes = 4 << 30
	cfg.Status = config.Status{} // nothing to serve while measuring
	if o.BatchMax > 0 {
		cfg.Pipeline.BatchMax = o.BatchMax
	}
	if o.CommitInterval != nil {
		cfg.Pipeline.CommitInterval = config.D(*o.CommitInterval)
	}
	var (
		src *sim.Dev
		ups []uplink.Uplink
		err error
	)
	if o.Rate > 0 {
		src, err = sim.New("bench", sim.Opts{Kind: sim.KindLoRa, Interval: time.Duration(float64(time.Second) / o.Rate), Seed: 1})
		ups = []uplink.Uplink{benchAcker{}}
	} else {
		cfg.Pipeline.QueueLen = cfg.Pipeline.BatchMax
		src, err = sim.New("bench", sim.Opts{Kind: sim.KindCounter, Interval: 0})
	}
	if err != nil {
		return BenchResult{}, err
	}
	hist := newLatencyHistogram()
	a, err := New(Options{
		Config: &cfg, Version: o.Version, CreateKey: true,
		Logger:    slog.New(slog.DiscardHandler),
		Drivers:   []drivers.Driver{src},
		Uplinks:   ups,
		OnDurable: hist.observe,
		// As the daemon does: one core at a trickle, all of them at full speed.
		GovernCPUs: true,
	})
	if err != nil {
		return BenchResult{}, err
	}
	signCPU := measureSign(a.signer)
	signPar := measureSignParallel(a.signer, a.pipeline.SignWorkers())

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- a.Run(runCtx) }()
	// At a set rate the warm-up covers opening, the boot record and the
	// first commit windows, and the steady part is measured from its end to
	// the stop. At full speed the figure is the whole run, drain included,
	// as it always was.
	var from, to benchSample
	var warmUp <-chan time.Time
	if o.Rate > 0 {
		warmUp = time.After(min(2*time.Second, o.Duration/5))
	} else {
		from = a.sample()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	stop := time.After(o.Duration)
	for running := true; running; {
		select {
		case <-tick.C:
			if o.Progress != nil {
				_, _, stored := a.pipeline.Counts()
				o.Progress(time.Since(start), stored)
			}
		case <-warmUp:
			from = a.sample()
		case <-stop:
			if o.Rate > 0 {
				to = a.sample()
			}
			cancel()
		case err = <-done:
			running = false
		}
	}
	if o.Rate <= 0 && err == nil && ctx.Err() == nil {
		to = a.sample()
	}
	if err != nil {
		return BenchResult{}, err
	}
	if to.at.IsZero() { // the parent ctx ended the run early
		return BenchResult{}, fmt.Errorf("agent: bench: stopped before the end: %w", ctx.Err())
	}
	after := rusage()
	res := BenchResult{
		Elapsed:         to.at.Sub(from.at),
		P50:             hist.quantile(0.50),
		P99:             hist.quantile(0.99),
		PeakRSSBytes:    int64(after.Maxrss) * 1024,
		BatchMax:        cfg.Pipeline.BatchMax,
		SignWorkers:     a.pipeline.SignWorkers(),
		Rate:            o.Rate,
		CommitInterval:  cfg.Pipeline.CommitInterval.Duration,
		SignCPU:         signCPU,
		SignCPUParallel: signPar,
	}
	// At a set rate every record observed is stored within the window, so
	// count what came in; at full speed count what was made durable.
	res.Records = to.stored - from.stored
	if o.Rate > 0 {
		res.Records = to.observed - from.observed
	}
	secs := res.Elapsed.Seconds()
	res.PerSecond = float64(res.Records) / secs
	res.CommitsPerSec = float64(to.writes.Commits-from.writes.Commits) / secs
	res.FsyncsPerSec = 2 * res.CommitsPerSec
	if res.Records > 0 {
		res.CPUPerRecord = (to.cpu - from.cpu) / time.Duration(res.Records)
		res.DiskPerRecord = float64(to.diskBytes-from.diskBytes) / float64(res.Records)
		res.StorePerRecord = float64(to.writes.Bytes-from.writes.Bytes) / float64(res.Records)
	}
	if st, err := fileSize(cfg.Store.Path); err == nil {
		res.StoreFileSize = st
	}
	res.KeyBackend = keys.Backend(cfg.Device.Key)
	res.SessionBindings = a.sessionRotations.Load()
	res.HardwareSignedMs = float64(a.lastHWSign.Load()) / 1e6
	res.BytesPerRecord, err = meanRecordBytes(cfg.Store.Path)
	return res, err
}

// meanRecordBytes is the mean COSE size of the outbox's records (the first
// 100,000): what each costs on the wire.
func meanRecordBytes(path string) (float64, error) {
	st, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	var n, sum int
	errEnough := errors.New("enough")
	err = st.Records(func(r store.Record) error {
		n++
		sum += len(r.Data)
		if n == 100_000 {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	return float64(sum) / float64(n), nil
}

// benchSample is one point of the measured window.
type benchSample struct {
	at               time.Time
	observed, stored uint64
	cpu              time.Duration
	diskBytes        uint64
	writes           store.Writes
}

func (a *Agent) sample() benchSample {
	o, _, st := a.pipeline.Counts()
	return benchSample{at: time.Now(), observed: o, stored: st, cpu: cpuTime(rusage()),
		diskBytes: procWriteBytes(), writes: a.store.Writes()}
}

// measureSign is the CPU time of one signature over a record-sized payload,
// alone on one thread: the yardstick for the pipeline's CPU per record.
func measureSign(s attest.Signer) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	payload := make([]byte, 300)
	const n = 1000
	before := threadCPU()
	for range n {
		if _, err := s.Sign(nil, payload); err != nil {
			return 0
		}
	}
	return (threadCPU() - before) / n
}

// measureSignParallel is one signature's CPU with workers goroutines
// signing at once, from the whole process's CPU time.
func measureSignParallel(s attest.Signer, workers int) time.Duration {
	if workers <= 1 {
		return measureSign(s)
	}
	payload := make([]byte, 300)
	const n = 500
	var wg sync.WaitGroup
	before := cpuTime(rusage())
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				s.Sign(nil, payload)
			}
		}()
	}
	wg.Wait()
	return (cpuTime(rusage()) - before) / time.Duration(n*workers)
}

func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(unix.RUSAGE_THREAD, &ru)
	return cpuTime(ru)
}

// procWriteBytes is what this process has caused to be written to storage
// (/proc/self/io write_bytes); 0 where the kernel does not say.
func procWriteBytes() uint64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}

// benchAcker stands in for a network uplink whose far side confirms every
// record at once, so a rate bench pays for acks and deletes as a daemon does.
type benchAcker struct{}

func (benchAcker) Name() string { return "bench" }

func (benchAcker) Run(ctx context.Context, q uplink.Queue) error {
	acked, err := q.Acked()
	if err != nil {
		return err
	}
	for {
		changed := q.Changed()
		recs, err := q.Pending(acked, 1024)
		if err != nil {
			return err
		}
		if n := len(recs); n > 0 {
			acked = recs[n-1].Seq
			if err := q.Ack(acked); err != nil {
				return err
			}
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
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

// String is the summary bench prints.
func (r BenchResult) String() string {
	head := fmt.Sprintf("%d records in %.1fs: %.0f records/s signed and durable, observation→durable p50 %v p99 %v, CPU %v/record, peak RSS %.1f MB",
		r.Records, r.Elapsed.Seconds(), r.PerSecond, r.P50, r.P99, r.CPUPerRecord.Round(100*time.Nanosecond), float64(r.PeakRSSBytes)/1e6)
	var ratio string
	if r.SignCPU > 0 && r.SignCPUParallel > 0 {
		ratio = fmt.Sprintf(" (%.2f× one signature alone, %v here; %.2f× one of %d signing at once, %v)",
			float64(r.CPUPerRecord)/float64(r.SignCPU), r.SignCPU.Round(100*time.Nanosecond),
			float64(r.CPUPerRecord)/float64(r.SignCPUParallel), r.SignWorkers, r.SignCPUParallel.Round(100*time.Nanosecond))
	}
	head += fmt.Sprintf("; key %s, %.0f bytes/record", r.KeyBackend, r.BytesPerRecord)
	if r.SessionBindings > 0 {
		head += fmt.Sprintf(", %d hardware signatures (session bindings, last %.1f ms)", r.SessionBindings, r.HardwareSignedMs)
	}
	return fmt.Sprintf("%s\nper record: CPU %.1f µs%s, %.0f bytes written to disk (%.0f of them outbox pages); %.1f commits/s, %.1f fsyncs/s (commit_interval %v)",
		head, float64(r.CPUPerRecord)/1e3, ratio, r.DiskPerRecord, r.StorePerRecord, r.CommitsPerSec, r.FsyncsPerSec, r.CommitInterval)
}
