package procs

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/clock/clocktest"
)

// rig runs a Governor on a fake clock and a fake CPU meter; load(c, d)
// spends c cores for d of fake time, one sample at a time.
type rig struct {
	t    *testing.T
	g    *Governor
	clk  *clocktest.Fake
	cpu  atomic.Int64
	mu   sync.Mutex
	sets []int
	done chan struct{}
	stop context.CancelFunc
}

func newRig(t *testing.T, max int, gomaxprocs string) *rig {
	r := &rig{t: t, clk: clocktest.NewFake(time.Unix(1_750_000_000, 0)), done: make(chan struct{})}
	r.g = New(Opts{
		Max: max, Clock: r.clk, Getenv: func(string) string { return gomaxprocs },
		CPUTime: func() time.Duration { return time.Duration(r.cpu.Load()) },
		Set: func(n int) {
			r.mu.Lock()
			r.sets = append(r.sets, n)
			r.mu.Unlock()
		},
	})
	r.g.max = max // as if the runtime had started with max Ps
	r.g.procs.Store(int32(max))
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() {
		defer close(r.done)
		r.g.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

func (r *rig) load(cores float64, d time.Duration) {
	r.t.Helper()
	for step := 250 * time.Millisecond; d > 0; d -= step {
		r.clk.WaitPending(r.t, 1)
		r.cpu.Add(int64(cores * float64(step)))
		r.clk.Advance(step)
	}
	r.clk.WaitPending(r.t, 1) // the last sample is taken
}

func (r *rig) setCalls() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sets)
}

func TestGovernor(t *testing.T) {
	r := newRig(t, 4, "")
	r.load(0.1, time.Second)
	if got := r.g.Procs(); got != 1 {
		t.Fatalf("light load: %d Ps, want 1", got)
	}
	r.load(0.45, 10*time.Second) // busy, but one P carries it
	if got := r.g.Procs(); got != 1 {
		t.Fatalf("0.45 cores: %d Ps, want 1", got)
	}
	r.load(0.6, 250*time.Millisecond)
	if got := r.g.Procs(); got != 4 {
		t.Fatalf("one sample of 0.6 cores on one P: %d Ps, want 4", got)
	}
	r.load(0.3, 10*time.Second) // between the edges: keep what it has
	if got := r.g.Procs(); got != 4 {
		t.Fatalf("0.3 cores on 4 Ps: %d Ps, want 4", got)
	}
	r.load(0.1, 4500*time.Millisecond)
	r.load(0.3, 250*time.Millisecond) // a blip resets the quiet spell
	r.load(0.1, 4500*time.Millisecond)
	if got := r.g.Procs(); got != 4 {
		t.Fatalf("quiet for less than %v at a time: %d Ps, want 4", LowerAfter, got)
	}
	r.load(0.1, time.Second)
	if got := r.g.Procs(); got != 1 {
		t.Fatalf("quiet for %v: %d Ps, want 1", LowerAfter, got)
	}
	if got := r.g.Switches(); got != 2 {
		t.Errorf("%d switches, want 2 (up, down)", got)
	}
	r.stop()
	<-r.done
	if got, want := r.setCalls(), []int{1, 4, 1, 4}; !slices.Equal(got, want) {
		t.Errorf("GOMAXPROCS set to %v, want %v (start on one, up, down, all again at the end)", got, want)
	}
}

func TestGovernorMaxOneStaysOnOne(t *testing.T) {
	r := newRig(t, 1, "")
	r.load(2, 2*time.Second)
	if got := r.g.Procs(); got != 1 {
		t.Fatalf("max 1 under load: %d Ps", got)
	}
	if got := r.setCalls(); len(got) != 0 {
		t.Errorf("GOMAXPROCS set to %v with max 1, want never", got)
	}
}

// TestGovernorLeavesAFixedNumber: with GOMAXPROCS in the environment the
// user chose, and the governor only reports.
func TestGovernorLeavesAFixedNumber(t *testing.T) {
	r := newRig(t, 2, "2")
	r.cpu.Add(int64(10 * time.Second))
	r.clk.Advance(10 * time.Second)
	r.stop()
	<-r.done
	if got := r.setCalls(); len(got) != 0 {
		t.Errorf("GOMAXPROCS set to %v though the environment fixed it", got)
	}
	if r.g.Fixed() != "GOMAXPROCS=2" || r.g.Procs() != 2 {
		t.Errorf("fixed %q, %d Ps", r.g.Fixed(), r.g.Procs())
	}
}

func TestNewClampsMax(t *testing.T) {
	none := func(string) string { return "" }
	if g, start := New(Opts{Max: 1 << 20, Getenv: none}), runtime.GOMAXPROCS(0); g.Max() != start {
		t.Errorf("max %d with %d Ps at start: want no more than the runtime has", g.Max(), start)
	}
	if g := New(Opts{Max: 1, Getenv: none}); g.Max() != 1 {
		t.Errorf("max 1 gave %d", g.Max())
	}
}

// TestGovernorDemand: a backlog raises the number of Ps though the CPU
// time reads low (a P starved by other processes), and holds it up while
// demands keep coming.
func TestGovernorDemand(t *testing.T) {
	r := newRig(t, 2, "")
	r.load(0.1, time.Second)
	r.g.Demand()
	r.load(0.2, 250*time.Millisecond)
	if got := r.g.Procs(); got != 2 {
		t.Fatalf("a demand at 0.2 cores: %d Ps, want 2", got)
	}
	for range 30 { // 7.5 s of low CPU time, with a backlog all along
		r.g.Demand()
		r.load(0.1, 250*time.Millisecond)
	}
	if got := r.g.Procs(); got != 2 {
		t.Fatalf("demands for 7.5 s at 0.1 cores: %d Ps, want 2", got)
	}
	r.load(0.1, LowerAfter+time.Second)
	if got := r.g.Procs(); got != 1 {
		t.Fatalf("%v after the last demand: %d Ps, want 1", LowerAfter+time.Second, got)
	}
	var none *Governor
	none.Demand() // the agent wires it whether or not it governs
}

// TestGOMAXPROCSTheRuntimeIgnores: only a positive number fixes the Ps, as
// only such a number is obeyed by the runtime.
func TestGOMAXPROCSTheRuntimeIgnores(t *testing.T) {
	for v, want := range map[string]string{"": "", "0": "", "-1": "", "two": "", "3": "GOMAXPROCS=3"} {
		if got := New(Opts{Getenv: func(string) string { return v }}).Fixed(); got != want {
			t.Errorf("GOMAXPROCS=%q: fixed by %q, want %q", v, got, want)
		}
	}
}
