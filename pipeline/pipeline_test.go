package pipeline

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"math"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/attesttest"
	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/pipeline/pipelinetest"
	"github.com/edge-agent/edge-agent/store"
	"github.com/edge-agent/edge-agent/store/storetest"
)

func testSigner(t testing.TB) attest.Signer { return attesttest.NewSigner(t, 1) }

func openStore(t testing.TB, maxBytes int64, uplinks ...string) *store.Store {
	t.Helper()
	return storetest.Temp(t, store.Options{MaxBytes: maxBytes, Uplinks: uplinks})
}

// runPipeline feeds obs through a pipeline into box and waits for the drain.
func runPipeline(t testing.TB, p *Pipeline, obs []drivers.Observation) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	for _, o := range obs {
		if err := p.Emit(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	p.CloseInput()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("pipeline did not drain")
	}
}

func counters(n int) []drivers.Observation {
	obs := make([]drivers.Observation, n)
	for i := range obs {
		obs[i] = drivers.Observation{Kind: drivers.KindCounter, Source: "load", Time: time.Now(), Data: drivers.Counter{N: uint64(i)}}
	}
	return obs
}

// BenchmarkPipeline is the pipeline at full speed, for profiling:
// go test -run '^$' -bench Pipeline -cpuprofile cpu.out ./pipeline
func BenchmarkPipeline(b *testing.B) {
	st := openStore(b, 0)
	p, err := New(Opts{Signer: testSigner(b), Outbox: st, BatchMax: 256, QueueLen: 256})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	runPipeline(b, p, counters(b.N))
}

func TestPipelineChainsEveryObservation(t *testing.T) {
	for _, tc := range []struct {
		name             string
		n, batch, worker int
		fileKey          bool // the device's own signer, which signs in chunks (attest.SignPayloads)
	}{
		{"one by one", 10, 1, 1, false},
		{"batched serial", 1000, 64, 1, false},
		{"batched parallel", 3000, 256, 4, false},
		{"batched parallel, file key", 3000, 256, 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t, 0)
			signer := testSigner(t)
			if tc.fileKey {
				var err error
				if signer, err = attest.CreateKey("file:"+filepath.Join(t.TempDir(), "device.key"), rand.Reader); err != nil {
					t.Fatal(err)
				}
			}
			p, err := New(Opts{Signer: signer, Outbox: st, Version: "test",
				BatchMax: tc.batch, SignWorkers: tc.worker, QueueLen: 16})
			if err != nil {
				t.Fatal(err)
			}
			runPipeline(t, p, counters(tc.n))
			rep, recs := pipelinetest.AuditStore(t, st)
			if !rep.OK() {
				t.Fatalf("report not OK: %+v", rep)
			}
			if len(recs) != tc.n+1 {
				t.Fatalf("%d records, want %d observations + boot", len(recs), tc.n)
			}
			if recs[0].Claims.Kind != attest.KindBoot {
				t.Fatalf("first record is %q, want agent.boot", recs[0].Claims.Kind)
			}
			boot := p.BootID()
			for i, r := range recs {
				if string(r.Claims.Boot) != string(boot[:]) {
					t.Fatalf("record %d has boot id %x, want %x", i, r.Claims.Boot, boot)
				}
			}
			if o, s, d := p.Counts(); o != uint64(tc.n) || s != uint64(tc.n+1) || d != uint64(tc.n+1) {
				t.Fatalf("counts observed %d signed %d stored %d", o, s, d)
			}
		})
	}
}

func TestPipelineContinuesChainAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	signer := testSigner(t)
	for run := 0; run < 3; run++ {
		st, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := New(Opts{Signer: signer, Outbox: st})
		if err != nil {
			t.Fatal(err)
		}
		runPipeline(t, p, counters(50))
		st.Close()
	}
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, recs := pipelinetest.AuditStore(t, st)
	if !rep.OK() || len(recs) != 153 || rep.Devices[0].Chains[0].Boots != 3 {
		t.Fatalf("after 3 runs: %d records, report %+v", len(recs), rep)
	}
}

func TestLocationStamp(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	st := openStore(t, 0)
	p, err := New(Opts{Signer: testSigner(t), Outbox: st, Now: clock, LocationAge: 10 * time.Second, BatchMax: 1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	emit := func(kind string) {
		t.Helper()
		if err := p.Emit(context.Background(), drivers.Observation{Kind: kind, Source: "s", Time: now, Data: drivers.Counter{}}); err != nil {
			t.Fatal(err)
		}
		waitStored(t, p)
	}
	fix := drivers.Fix{TimeUnixNano: now.UnixNano(), Lat: 52.520008123456789, Lon: 13.404954987654321, AltMSL: drivers.F64(34.5), Mode: drivers.Fix3D, Sats: drivers.U8(9), HDOP: drivers.F64(0.8)}
	emit(drivers.KindCounter) // no fix yet
	p.UpdateFix(fix)
	emit(drivers.KindCounter) // fresh fix
	now = now.Add(11 * time.Second)
	emit(drivers.KindCounter) // stale
	p.UpdateFix(fix)
	p.UpdateFix(drivers.Fix{Mode: drivers.FixNone, Lat: 1, Lon: 1}) // receiver lost the fix
	emit(drivers.KindCounter)
	p.CloseInput()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, recs := pipelinetest.AuditStore(t, st)
	want := []bool{false, false, true, false, false} // boot, then the four emits
	for i, r := range recs {
		if got := r.Claims.Loc != nil; got != want[i] {
			t.Errorf("record %d (%s): has location %v, want %v", i, r.Claims.Kind, got, want[i])
		}
	}
	if l := recs[2].Claims.Loc; l != nil && (l.Lat != fix.Lat || l.Lon != fix.Lon || l.Sats == nil || *l.Sats != 9 || l.Mode != 3) {
		t.Errorf("location stamp lost precision or fields: %+v", l)
	}
}

func waitStored(t testing.TB, p *Pipeline) {
	t.Helper()
	condtest.WaitFor(t, 10*time.Second, "the pipeline to store the observation", func() bool { o, _, s := p.Counts(); return s == o+1 })
}

func TestQuotaEvictionIsAnnounced(t *testing.T) {
	// 1 MiB quota, no uplink acks anything; headroom as the daemon sets it.
	st, err := store.Open(filepath.Join(t.TempDir(), "outbox.db"), store.Options{MaxBytes: 1 << 20, EvictHeadroom: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, err := New(Opts{Signer: testSigner(t), Outbox: st, BatchMax: 64})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]drivers.Observation, 6000) // ~300 B each: well over the quota
	for i := range big {
		big[i] = drivers.Observation{Kind: drivers.KindCounter, Source: "load", Time: time.Now(),
			Data: map[string]any{"n": i, "pad": make([]byte, 200)}}
	}
	runPipeline(t, p, big)
	stats, err := st.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if stats.Bytes > 1<<20 {
		t.Fatalf("store holds %d bytes, over the 1 MiB quota", stats.Bytes)
	}
	if stats.Evicted == 0 {
		t.Fatal("nothing was evicted: the test does not exercise the quota")
	}
	// What is left, plus what was evicted, must be fully announced: audit
	// the remaining records as a partial chain.
	audit := attest.NewAudit(attest.AuditOptions{Partial: true})
	gaps := 0
	st.Records(func(r store.Record) error {
		_, rec, _ := audit.Add(r.Data)
		if rec != nil && rec.Claims.Kind == attest.KindGap {
			gaps++
		}
		return nil
	})
	if gaps == 0 {
		t.Fatal("evictions happened but no agent.gap record is left in the outbox")
	}
	rep := audit.Report()
	if len(rep.Devices) != 1 || len(rep.Devices[0].Chains[0].UnannouncedGaps) != 0 || !rep.OK() {
		t.Fatalf("eviction left unannounced gaps: %+v", rep)
	}
	if pending := st.PendingGaps(); len(pending) != 0 {
		t.Fatalf("gaps still pending after the drain: %v", pending)
	}
}

// failingOutbox fails the first n appends, as a full disk would.
type failingOutbox struct {
	*store.Store
	failures atomic.Int32
}

func (f *failingOutbox) Append(e []store.Entry, a []store.Range) ([]store.Range, error) {
	if f.failures.Add(-1) >= 0 {
		return nil, errors.New("write outbox.db: no space left on device")
	}
	return f.Store.Append(e, a)
}

func TestAppendFailureHoldsTheBatch(t *testing.T) {
	box := &failingOutbox{Store: openStore(t, 0)}
	box.failures.Store(3)
	p, err := New(Opts{Signer: testSigner(t), Outbox: box, BatchMax: 8})
	if err != nil {
		t.Fatal(err)
	}
	runPipeline(t, p, counters(40))
	if p.LastAppendError() == "" {
		t.Fatal("the append failure was not reported")
	}
	rep, recs := pipelinetest.AuditStore(t, box.Store)
	if !rep.OK() || len(recs) != 41 {
		t.Fatalf("after disk-full retries: %d records, %+v", len(recs), rep)
	}
}

// A location stamp that cannot be encoded must not silence the other
// drivers, and an observation that cannot be encoded is counted and logged
// at most once per interval, not once each.
func TestEncodeFailuresAreCountedAndQuiet(t *testing.T) {
	st := openStore(t, 0)
	var logs countingHandler
	p, err := New(Opts{Signer: testSigner(t), Outbox: st, BatchMax: 16, Logger: slog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	p.UpdateFix(drivers.Fix{TimeUnixNano: time.Now().UnixNano(), Lat: 52.5, Lon: 13.4, Mode: drivers.Fix3D, Sats: drivers.U8(9), HDOP: drivers.F64(math.NaN())})
	for _, o := range counters(100) {
		if err := p.Emit(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 { // a driver bug: a value CBOR can carry but the claims refuse
		if err := p.Emit(context.Background(), drivers.Observation{Kind: "", Source: "bad", Time: time.Now(), Data: drivers.Counter{}}); err != nil {
			t.Fatal(err)
		}
	}
	p.CloseInput()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, recs := pipelinetest.AuditStore(t, st)
	if len(recs) != 101 { // boot + 100 counters
		t.Errorf("%d records stored, want 101: the bad stamp silenced the counters", len(recs))
	}
	dropped, withoutLoc, last := p.EncodeFailures()
	// The location stamp refuses the NaN fix itself (issue #18), so no record
	// has to be stored without its stamp; the encode fallback is the second line.
	if dropped != 100 || withoutLoc != 0 || last == "" {
		t.Errorf("EncodeFailures = %d dropped, %d without location, %q; want 100, 0 and an error", dropped, withoutLoc, last)
	}
	if n := logs.errors.Load(); n > 2 {
		t.Errorf("%d ERROR lines for 200 encoding failures, want at most 2", n)
	}
}

type countingHandler struct{ errors atomic.Int64 }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.errors.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// TestBacklogIsReported: a queue that fills faster than one core signs is
// reported (the agent then signs on every core), records one by one are not.
func TestBacklogIsReported(t *testing.T) {
	for _, tc := range []struct {
		name    string
		queued  int // emitted before Run starts
		backlog bool
	}{
		{"a full queue", 256, true},
		{"a few records", signParallelMin / 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reports atomic.Int32
			p, err := New(Opts{Signer: testSigner(t), Outbox: openStore(t, 0), BatchMax: 256, QueueLen: 256,
				OnBacklog: func() { reports.Add(1) }})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range counters(tc.queued) {
				if err := p.Emit(context.Background(), o); err != nil {
					t.Fatal(err)
				}
			}
			runPipeline(t, p, nil)
			if got := reports.Load() > 0; got != tc.backlog {
				t.Errorf("%d records queued: backlog reported %d times, want reported = %v", tc.queued, reports.Load(), tc.backlog)
			}
		})
	}
}
