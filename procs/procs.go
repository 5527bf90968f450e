// Package procs chooses how many cores the Go scheduler runs the agent on,
// from the load: one while the agent needs little, all it may use when busy.
//
// At the rates devices run (one to a thousand packets a second) the agent
// needs a tenth of a core or less, and every packet crosses a few goroutines.
// With more than one P, each hand-off wakes an idle thread that spins looking
// for work before it sleeps again: at 1,000 LoRa packets/s the daemon spent
// 108–124 µs of CPU per packet on two Ps and 89–102 µs on one (docs/benchmarks.md,
// #11). Under load — a burst to sign, the full-speed bench — the extra Ps sign
// in parallel and are worth their wake-ups. The Governor samples the
// process's CPU time, hears of backlogs (Demand), and moves between the two.
//
// GOMAXPROCS is process-wide: run one Governor per process. It is safe to
// read from any goroutine while Run runs.
package procs

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/clock"
)

// When to switch, in cores used over one sample. Between the two the
// governor keeps what it has, so a load near either edge does not flap.
const (
	// RaiseAt: on one P, half of it busy means bursts wait for it.
	RaiseAt = 0.5
	// LowerBelow, for LowerAfter: the load one P carries with room to spare.
	LowerBelow = 0.25
	LowerAfter = 5 * time.Second
)

// Opts configures a Governor.
type Opts struct {
	// Max is how many cores the agent may use under load: 0 = as many as
	// the runtime started with (runtime.NumCPU within cgroup limits), and at
	// most that. 1 keeps the agent on one core.
	Max int
	// Interval is how often the load is sampled; 0 = 250 ms.
	Interval time.Duration
	Clock    clock.Clock
	Logger   *slog.Logger
	// CPUTime is the process's user+system CPU time so far; nil = getrusage.
	CPUTime func() time.Duration
	// Set applies a number of Ps; nil = runtime.GOMAXPROCS. Tests replace it.
	Set func(n int)
	// Getenv reads the environment; nil = os.Getenv. A GOMAXPROCS there
	// means someone else chose the number of Ps: the governor only reports it.
	Getenv func(string) string
}

// Governor moves GOMAXPROCS between 1 and its Max from the measured load.
type Governor struct {
	o        Opts
	max      int
	fixed    string
	procs    atomic.Int32
	switches atomic.Uint64
	demanded atomic.Bool
}

// New returns a Governor; nothing changes until Run.
func New(o Opts) *Governor {
	start := runtime.GOMAXPROCS(0)
	if o.Interval <= 0 {
		o.Interval = 250 * time.Millisecond
	}
	o.Clock = clock.Or(o.Clock)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CPUTime == nil {
		o.CPUTime = processCPU
	}
	if o.Set == nil {
		o.Set = func(n int) { runtime.GOMAXPROCS(n) }
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	g := &Governor{o: o, max: start}
	// The runtime obeys a positive number and ignores anything else.
	if v := o.Getenv("GOMAXPROCS"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			g.fixed = "GOMAXPROCS=" + v
		}
	}
	if o.Max > 0 && o.Max < start {
		g.max = o.Max
	}
	g.procs.Store(int32(start))
	return g
}

// Demand says work is waiting for a core (a backlog to sign): the next
// sample raises the number of Ps whatever the measured load, and the
// governor does not lower it while demands keep coming. The CPU time alone
// can under-read demand: on a machine shared with other processes one P
// may get less than half a core however much work waits for it. Safe on a
// nil Governor, which ignores it.
func (g *Governor) Demand() {
	if g != nil && !g.demanded.Load() {
		g.demanded.Store(true)
	}
}

// Procs is the number of Ps the agent runs on now.
func (g *Governor) Procs() int { return int(g.procs.Load()) }

// Max is the most Ps the governor will use.
func (g *Governor) Max() int { return g.max }

// Switches counts changes of the number of Ps since Run started (the
// first, to one, not counted).
func (g *Governor) Switches() uint64 { return g.switches.Load() }

// Fixed says who chose the number of Ps when the governor does not
// ("GOMAXPROCS=2"); "" while the governor chooses.
func (g *Governor) Fixed() string { return g.fixed }

// Run samples the load every Interval and sets the number of Ps until ctx
// ends, then gives the process all of its Max again (a drain at exit, or
// whatever runs next in this process, is not held to one core).
func (g *Governor) Run(ctx context.Context) error {
	if g.fixed != "" {
		g.o.Logger.Info("the number of cores is set outside the agent; the load does not change it", "by", g.fixed, "cpus", g.Procs())
		<-ctx.Done()
		return nil
	}
	defer g.set(g.max)
	// Start on one core: a daemon starting is not yet busy, and if it is,
	// the first sample says so.
	if g.Procs() != 1 {
		g.o.Set(1)
		g.procs.Store(1)
	}
	var (
		lastCPU  = g.o.CPUTime()
		lastAt   = g.o.Clock.Now()
		lowSince time.Time
	)
	for {
		if err := clock.Sleep(ctx, g.o.Clock, g.o.Interval); err != nil {
			return nil
		}
		cpu, now := g.o.CPUTime(), g.o.Clock.Now()
		wall := now.Sub(lastAt)
		if wall <= 0 {
			continue
		}
		used := float64(cpu-lastCPU) / float64(wall)
		lastCPU, lastAt = cpu, now
		demanded := g.demanded.Swap(false)
		switch n := g.Procs(); {
		case n < g.max && (demanded || used >= RaiseAt*float64(n)):
			lowSince = time.Time{}
			g.o.Logger.Debug("busy: using more cores", "cpus", g.max, "load", used)
			g.set(g.max)
		case n > 1 && !demanded && used < LowerBelow:
			if lowSince.IsZero() {
				lowSince = now
			} else if now.Sub(lowSince) >= LowerAfter {
				lowSince = time.Time{}
				g.o.Logger.Debug("light load: back to one core", "load", used)
				g.set(1)
			}
		default:
			lowSince = time.Time{}
		}
	}
}

func (g *Governor) set(n int) {
	if int(g.procs.Load()) == n {
		return
	}
	g.o.Set(n)
	g.procs.Store(int32(n))
	g.switches.Add(1)
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
