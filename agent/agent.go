// Package agent is the daemon: it builds every component from the config and
// runs them in the order the data flows.
//
//	drivers ─Emit→ pipeline (stamp, chain, sign) ─Append→ store ─Queue→ uplinks
//
// Consumers start before producers and producers stop first: on shutdown the
// drivers are cancelled, the pipeline commits what they handed over, the
// uplinks get a bounded final flush, and the store is closed. A driver or an
// uplink that fails is logged and restarted with backoff; only the store
// failing stops the daemon, because without it nothing can be promised.
//
// Only this package and cmd/edge-agent import across the pipeline stages.
package agent

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/keys"
	"github.com/edge-agent/edge-agent/backoff"
	"github.com/edge-agent/edge-agent/clock"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/pipeline"
	"github.com/edge-agent/edge-agent/procs"
	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/store"
	"github.com/edge-agent/edge-agent/uplink"
)

// Options configures an Agent.
type Options struct {
	Config  *config.Config
	Version string
	Commit  string
	Logger  *slog.Logger
	Now     func() time.Time
	// Clock runs the restart backoff's timers; nil is the wall clock.
	// Tests pass a clocktest.Fake (and its Now as Now).
	Clock clock.Clock
	Rand  io.Reader
	// Notifier receives systemd readiness, watchdog and status; nil → none.
	Notifier Notifier
	// FlushTimeout bounds the uplinks' final flush at shutdown (default 3s).
	FlushTimeout time.Duration
	// DrainTimeout bounds the pipeline's drain at shutdown (default 10s):
	// on a disk that refuses writes (full, or remounted read-only) the
	// queued records cannot become durable, and waiting for them would
	// outlast the unit's stop timeout. They were never reported durable.
	DrainTimeout time.Duration
	// CreateKey lets New create a missing file: key (first start).
	CreateKey bool
	// OnDurable is passed to the pipeline (bench latency).
	OnDurable func(observed []time.Time, durable time.Time)
	// Drivers and Uplinks, when set, replace the ones the config describes
	// (demo, bench and tests build their own).
	Drivers []drivers.Driver
	Uplinks []uplink.Uplink
	// GovernCPUs lets Run choose the number of cores from the load, up to
	// device.cpus (package procs). GOMAXPROCS is process-wide, so only the
	// daemon and the bench set it, not tests that run agents side by side.
	GovernCPUs bool
}

// Agent is one running daemon.
type Agent struct {
	o        Options
	log      *slog.Logger
	signer   attest.Signer
	store    *store.Store
	pipeline *pipeline.Pipeline
	cpus     *procs.Governor // nil unless Options.GovernCPUs
	flushing chan struct{}   // closed when the final flush begins: uplinks stop pacing their writes
	drivers  []drivers.Driver
	uplinks  []uplink.Uplink
	started  atomic.Pointer[time.Time] // set when Run starts; read by Status from any goroutine

	// The device key (#13): the long-term key, the session signer that
	// signs records when the key is hardware, the manufacturer certificate.
	device           attest.Signer
	session          *attest.SessionSigner // nil for file: keys
	cert             *x509.Certificate     // nil when none is installed
	sessionRotations atomic.Int64
	lastHWSign       atomic.Int64 // ns of the last binding signature

	// pmu guards what a reload replaces: drivers, uplinks, o.Config and
	// the counts map. Readers (status, metrics) take it through current.
	pmu     sync.RWMutex
	reloads chan reloadRequest

	mu           sync.Mutex
	ackedAtStart map[string]uint64
	failures     map[string]string // component → last error
	probes       map[string]probeResult
	states       map[string]driverState // by driver name
	lastAck      map[string]time.Time   // by uplink name
	counts       map[string]*driverCounts
}

// New opens the key and the store and builds every component; nothing runs
// until Run. Close the agent (or Run it) to release the store.
func New(o Options) (*Agent, error) {
	if o.Config == nil {
		return nil, errors.New("agent: no config")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = 3 * time.Second
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 10 * time.Second
	}
	cfg := o.Config
	a := &Agent{o: o, log: o.Logger.With("component", "agent"), reloads: make(chan reloadRequest), failures: map[string]string{}, probes: map[string]probeResult{},
		states: map[string]driverState{}, lastAck: map[string]time.Time{}, counts: map[string]*driverCounts{},
		flushing: make(chan struct{})}

	if o.GovernCPUs {
		a.cpus = procs.New(procs.Opts{Max: cfg.Device.CPUs, Logger: o.Logger.With("component", "procs")})
	}

	device, err := openOrCreateKey(cfg.Device.Key, o.CreateKey, o.Rand, a.log, cfg.StorePath())
	if err != nil {
		return nil, err
	}
	var signer attest.Signer = device
	a.device = device
	if keys.Hardware(cfg.Device.Key) && cfg.Device.SessionRotation.Duration > 0 {
		a.session = attest.NewSessionSigner(device, o.Now)
		signer = a.session
	}
	a.signer = signer
	cert, err := a.loadCert(cfg, device)
	if err != nil {
		keys.Close(device)
		return nil, err
	}

	a.uplinks = o.Uplinks
	if a.uplinks == nil {
		if a.uplinks, err = buildUplinks(cfg, signer, o, a.flushing); err != nil {
			return nil, err
		}
	}
	a.drivers = o.Drivers
	if a.drivers == nil {
		if a.drivers, err = buildDrivers(cfg, a.fixSink, o); err != nil {
			return nil, err
		}
	}

	for _, d := range a.drivers {
		a.counts[d.Name()] = newDriverCounts()
		a.states[d.Name()] = driverState{state: status.StateLoaded}
	}

	names := make([]string, len(a.uplinks))
	for i, u := range a.uplinks {
		names[i] = u.Name()
	}
	st, err := store.Open(cfg.StorePath(), store.Options{
		MaxBytes:      int64(cfg.Store.MaxBytes),
		EvictHeadroom: int64(cfg.Store.MaxBytes) / 16,
		Reserve:       outboxReserve,
		MinFree:       minFree(filepath.Dir(cfg.StorePath())),
		Uplinks:       names,
		// Twice the longest window, so that acks nearly always ride with
		// the next window's commit rather than race it with one of their own.
		AckDelay: cfg.Pipeline.AckDelay(),
		Logger:   o.Logger, // the store adds its component
		Now:      o.Now,
	})
	if err != nil {
		keys.Close(device)
		return nil, fmt.Errorf("agent: open outbox %s: %w", cfg.StorePath(), err)
	}
	a.store = st

	var boot attest.Boot
	if rec := st.Recovery(); rec != nil && st.Head().Seq == 0 {
		// Tell verifiers which chain this one replaces and why it ends.
		boot = attest.Boot{Reason: attest.BootRecovered, PrevChain: rec.OldChain[:]}
	}
	bootReason, announce, err := softwareChange(cfg.Device.DataDir, o.Version, o.Now())
	if err != nil {
		// The history is worth a log line, not a device that cannot start.
		a.log.Warn("cannot tell whether this start is an upgrade", "err", err)
	}
	if boot.Reason == "" && st.Head().Seq > 0 {
		boot.Reason = bootReason
	}
	// The first commit holds the boot record and the announcements: after
	// it, this version is the one the device's history names.
	var historyOnce sync.Once
	onDurable := func(observed []time.Time, durable time.Time) {
		historyOnce.Do(func() {
			if err := softwareChangeDurable(cfg.Device.DataDir, o.Version); err != nil {
				a.log.Warn("cannot record this version for the next start", "err", err)
			}
		})
		if o.OnDurable != nil {
			o.OnDurable(observed, durable)
		}
	}
	a.pipeline, err = pipeline.New(pipeline.Opts{
		Boot:           boot,
		Announce:       announce,
		Cert:           cert,
		Signer:         signer,
		Outbox:         st,
		Version:        o.Version,
		QueueLen:       cfg.Pipeline.QueueLen,
		BatchMax:       cfg.Pipeline.BatchMax,
		SignWorkers:    cfg.Pipeline.SignWorkers,
		LocationAge:    cfg.Pipeline.LocationMaxAge.Duration,
		CommitInterval: cfg.Pipeline.CommitInterval.Duration,
		Logger:         o.Logger.With("component", "pipeline"),
		Now:            o.Now,
		Rand:           o.Rand,
		OnDurable:      onDurable,
		OnBacklog:      a.cpus.Demand, // a nil governor ignores it

		CommitMinRecords:  cfg.Pipeline.CommitMinRecords,
		CommitIntervalMax: cfg.Pipeline.CommitIntervalMax.Duration,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	if a.session != nil {
		// The first session is bound before anything is signed: a key
		// that cannot sign now fails the start, clearly.
		if err := a.rotate(); err != nil {
			st.Close()
			keys.Close(device)
			return nil, err
		}
	}
	a.ackedAtStart = map[string]uint64{}
	for _, n := range names {
		acked, err := st.Queue(n).Acked()
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("agent: read %s acknowledgements: %w", n, err)
		}
		a.ackedAtStart[n] = acked
	}
	return a, nil
}

// fixSink feeds GNSS fixes to the location stamp.
func (a *Agent) fixSink(f drivers.Fix) {
	if a.pipeline != nil {
		a.pipeline.UpdateFix(f)
	}
}

// warnIdle says at start and after a reload what a config without drivers
// or without uplinks means, so a fresh install does not look healthy.
func (a *Agent) warnIdle(ds []drivers.Driver, ups []uplink.Uplink) {
	if len(ds) == 0 {
		a.log.Warn("no drivers configured: nothing is observed or signed; add a [[drivers.*]] block " +
			"(the shipped /etc/edge-agent/config.toml has examples) and run systemctl reload edge-agent")
	}
	if len(ups) == 0 {
		a.log.Warn("no uplinks configured: records stay in the outbox and nobody receives them; " +
			"enable [uplinks.mqtt] or [uplinks.p2p] and run systemctl reload edge-agent")
	}
}

// openOrCreateKey opens the device key; a missing file: key is created when
// allowed, so that a fresh install comes up with an identity by itself.
//
// An empty key file (an older edge-agent killed between creating and writing
// it on the first start) is replaced too, but only while the outbox shows
// that no identity was ever used here: an empty file holds no key, so nothing
// was signed with it, and with no outbox records (no agent.boot either,
// which every start signs first) there is no earlier identity a new key would
// abandon. An empty key next to signed records is a lost key: that stays an
// error, since the network knows the device by the old one.
func openOrCreateKey(uri string, create bool, rnd io.Reader, log *slog.Logger, outbox string) (attest.Signer, error) {
	s, err := keys.Open(uri)
	switch {
	case keys.IsNotFound(err) && create:
		s, err = keys.Create(uri, rnd)
		if err == nil {
			log.Info("created a new device key", "key", uri, "device_id", s.DeviceID())
		}
	case errors.Is(err, attest.ErrKeyEmpty) && create:
		used, uerr := outboxUsed(outbox)
		switch {
		case uerr != nil:
			return nil, fmt.Errorf("%w; and the outbox %s cannot tell whether a key was used before: %w", err, outbox, uerr)
		case used:
			return nil, fmt.Errorf("%w; the outbox %s holds records signed by the key that was lost: restore the key from its backup, "+
				"or move the key and the outbox aside to start over as a new device", err, outbox)
		}
		s, err = attest.ReplaceEmptyKey(uri, rnd)
		if err == nil {
			log.Warn("the device key file was empty (a first start was interrupted) and no record was ever signed here: created a new device key",
				"key", uri, "device_id", s.DeviceID())
		}
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// outboxReserve is the space kept allocated for the outbox's acks and
// deletes on a full disk: room for the freelist of a 256 MiB outbox and the
// pages an ack rewrites, several times over.
const outboxReserve = 4 << 20

// minFree is what the outbox leaves free on its filesystem for the rest of
// the system (logs, the package manager): 5 % of it, at most 32 MiB.
func minFree(dir string) int64 {
	for ; ; dir = filepath.Dir(dir) { // the outbox directory may not exist yet
		if d, err := status.StatDisk(dir); err == nil {
			return min(d.TotalBytes/20, 32<<20)
		}
		if dir == filepath.Dir(dir) {
			return 0
		}
	}
}

// outboxUsed reports whether the outbox at path, or one moved aside from it,
// shows that this device has signed records before.
func outboxUsed(path string) (bool, error) {
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) > 0 {
		return true, nil
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || err == nil && fi.Size() == 0 {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	st, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		return false, err
	}
	defer st.Close()
	return st.Head().Seq > 0, nil
}

// Signer is the device identity.
func (a *Agent) Signer() attest.Signer { return a.signer }

// Store is the outbox (for status and tests).
func (a *Agent) Store() *store.Store { return a.store }

// Pipeline is the signing pipeline (for status and tests).
func (a *Agent) Pipeline() *pipeline.Pipeline { return a.pipeline }

// Close releases the store and the key when Run was never called.
func (a *Agent) Close() error {
	keys.Close(a.device)
	return a.store.Close()
}

// Run runs the daemon until ctx is done, then shuts down in order and
// returns nil. It closes the store before returning.
func (a *Agent) Run(ctx context.Context) error {
	defer a.store.Close()
	defer keys.Close(a.device)
	started := a.o.Now()
	a.started.Store(&started)
	a.log.Info("starting", "version", a.o.Version, "device_id", a.signer.DeviceID(),
		"chain", fmt.Sprintf("%x", a.store.Head().Chain), "head_seq", a.store.Head().Seq,
		"drivers", len(a.drivers), "uplinks", len(a.uplinks))
	a.warnIdle(a.drivers, a.uplinks)
	if rec := a.store.Recovery(); rec != nil {
		a.log.Error("the outbox was replaced after corruption; records in the old file were not delivered",
			"moved_to", rec.MovedTo, "reason", rec.Reason)
	}

	if a.cpus != nil {
		cpuCtx, stopCPUs := context.WithCancel(context.WithoutCancel(ctx))
		cpuDone := make(chan struct{})
		go func() { defer close(cpuDone); a.cpus.Run(cpuCtx) }()
		defer func() { stopCPUs(); <-cpuDone }()
	}

	// Consumers first: uplinks, then the pipeline, then the drivers.
	stopUplinks := a.startUplinks(ctx)

	pipeCtx, stopPipeline := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPipeline()
	pipeDone := make(chan error, 1)
	go func() { pipeDone <- a.pipeline.Run(pipeCtx) }()
	if a.session != nil {
		sessCtx, stopSessions := context.WithCancel(context.WithoutCancel(ctx))
		defer stopSessions()
		sessDone := make(chan struct{})
		go func() { defer close(sessDone); a.runSessions(sessCtx) }()
		defer func() { stopSessions(); <-sessDone }()
	}

	// The status API and metrics only read; they come up before the drivers
	// so that `edge-agent status` answers during a slow driver start, and go
	// down last so that a tech watching sees the backlog drain.
	serversCtx, stopServers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServers()
	var servers errgroup.Group
	a.startServers(serversCtx, &servers)

	stopDrivers := a.startDrivers(ctx)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); a.watch(watchCtx) }()
	if a.o.Notifier != nil {
		a.o.Notifier.Notify("READY=1\nSTATUS=" + a.statusLine())
	}

	var pipeErr error
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case pipeErr = <-pipeDone:
			// The pipeline only stops by itself when the store failed.
			a.log.Error("the signing pipeline stopped; shutting down", "err", pipeErr)
			running = false
		case req := <-a.reloads:
			req.done <- a.apply(ctx, req.cfg, &stopDrivers, &stopUplinks)
		}
	}
	if a.o.Notifier != nil {
		a.o.Notifier.Notify("STOPPING=1")
	}

	// Producers stop first, then the pipeline drains what they handed over.
	stopDrivers()
	stopWatch()
	<-watchDone
	if pipeErr == nil {
		a.pipeline.CloseInput()
		drain := time.NewTimer(a.o.DrainTimeout)
		select {
		case pipeErr = <-pipeDone:
		case <-drain.C:
			_, _, stored := a.pipeline.Counts()
			a.log.Error("the outbox refuses writes: stopping without storing the queued records (they were never reported durable)",
				"waited", a.o.DrainTimeout, "stored", stored, "last_error", a.pipeline.LastAppendError())
			stopPipeline() // ends the commit's retry loop
			pipeErr = <-pipeDone
		}
		drain.Stop()
	}

	// Give the uplinks a bounded chance to deliver the tail, at once.
	close(a.flushing)
	a.flush(a.o.FlushTimeout)
	stopUplinks()
	stopServers()
	servers.Wait()
	o, s, st := a.pipeline.Counts()
	a.log.Info("stopped", "observed", o, "signed", s, "stored", st, "head_seq", a.store.Head().Seq)
	return pipeErr
}

// probeDrivers logs what hardware each driver found, so the first lines of
// the log already say "GNSS skipped: no device at /dev/serial0". Drivers run
// regardless: a device that appears later is picked up by the driver itself.
func (a *Agent) probeDrivers(ctx context.Context, g *errgroup.Group, ds []drivers.Driver) {
	for _, d := range ds {
		p, ok := d.(drivers.Prober)
		if !ok {
			continue
		}
		g.Go(func() error {
			defer func() { // a probe must not take the daemon down; its bug is logged
				if r := recover(); r != nil {
					a.log.Error("driver probe panicked", "driver", d.Name(), "panic", r)
				}
			}()
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			outcome, err := p.Probe(pctx)
			a.mu.Lock()
			a.probes[d.Name()] = probeResult{outcome, err}
			a.mu.Unlock()
			switch outcome {
			case drivers.Loaded:
				a.log.Info("driver found its hardware", "driver", d.Name())
			case drivers.Skipped:
				a.log.Warn("driver skipped: hardware not present", "driver", d.Name(), "reason", err)
			default:
				a.log.Error("driver cannot use its hardware", "driver", d.Name(), "reason", err)
			}
			return nil
		})
	}
}

// probeResult is one driver's probe outcome.
type probeResult struct {
	Outcome drivers.Probe
	Err     error
}

// flush waits until every uplink has acked the head, or the timeout.
func (a *Agent) flush(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if a.backlog() == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.log.Warn("uplinks did not deliver everything before shutdown; the rest stays in the outbox",
		"backlog", a.backlog())
}

// backlog is the number of records the slowest uplink has not acked.
func (a *Agent) backlog() uint64 {
	head := a.store.Head().Seq
	var worst uint64
	_, _, ups := a.current()
	for _, u := range ups {
		acked, err := a.store.Queue(u.Name()).Acked()
		if err != nil {
			continue
		}
		if head > acked && head-acked > worst {
			worst = head - acked
		}
	}
	return worst
}

// supervise runs fn until ctx is done, restarting it with backoff when it
// fails or returns early: one broken component must not stop the others.
func (a *Agent) supervise(ctx context.Context, name string, fn func(context.Context) error, state func(driverState)) {
	if state == nil {
		state = func(driverState) {}
	}
	bo := backoff.New(time.Second, 5*time.Minute, a.o.Clock)
	clk := bo.Clock()
	for {
		start := clk.Now()
		err := fn(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			// A driver that finishes (a sim with a count) is done, not broken.
			a.log.Info("finished", "part", name)
			state(driverState{state: status.StateFinished})
			return
		}
		state(driverState{state: status.StateFailed, reason: err.Error()})
		a.mu.Lock()
		a.failures[name] = err.Error()
		a.mu.Unlock()
		if clk.Now().Sub(start) > time.Minute {
			bo.Reset()
		}
		wait := bo.Next()
		a.log.Error("component failed; restarting", "part", name, "err", err, "retry_in", wait)
		if bo.Wait(ctx, wait) != nil {
			return
		}
		state(driverState{state: status.StateLoaded, reason: "restarted after: " + err.Error()})
	}
}

// Notifier speaks the systemd notify protocol (package sdnotify).
type Notifier interface {
	Notify(state string) error
	// WatchdogInterval is systemd's WatchdogSec for this service, 0 if off.
	WatchdogInterval() time.Duration
}

// Snapshot is the daemon's progress at one moment.
type Snapshot struct {
	Observed, Signed, Stored uint64
	HeadSeq                  uint64
	Delivered                map[string]uint64 // per uplink, since start
	Backlog                  uint64            // records the slowest uplink has not acked
	Failures                 map[string]string // component → last error
	AppendError              string
}

// Snapshot reads the counters; it is cheap and safe from any goroutine.
func (a *Agent) Snapshot() Snapshot {
	o, s, st := a.pipeline.Counts()
	snap := Snapshot{Observed: o, Signed: s, Stored: st, HeadSeq: a.store.Head().Seq,
		Delivered: map[string]uint64{}, Backlog: a.backlog(), AppendError: a.pipeline.LastAppendError()}
	_, _, ups := a.current()
	for _, u := range ups {
		if acked, err := a.store.Queue(u.Name()).Acked(); err == nil {
			snap.Delivered[u.Name()] = acked - min(acked, a.ackedAtStart[u.Name()])
		}
	}
	a.mu.Lock()
	snap.Failures = make(map[string]string, len(a.failures))
	for k, v := range a.failures {
		snap.Failures[k] = v
	}
	a.mu.Unlock()
	return snap
}

func (a *Agent) statusLine() string {
	s := a.Snapshot()
	return fmt.Sprintf("signed %d records, backlog %d", s.Stored, s.Backlog)
}

// watch feeds the systemd watchdog while the pipeline makes progress.
func (a *Agent) watch(ctx context.Context) {
	if a.o.Notifier == nil {
		return
	}
	interval := a.o.Notifier.WatchdogInterval()
	tick := 5 * time.Second
	if interval > 0 {
		tick = min(tick, interval/2)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		msg := "STATUS=" + a.statusLine()
		// Progress means the pipeline committed or idled recently; a store
		// stuck in fsync on a dying SD card stops the heartbeat.
		if interval > 0 && time.Since(a.pipeline.LastProgress()) < interval/2 {
			msg += "\nWATCHDOG=1"
		}
		a.o.Notifier.Notify(msg)
	}
}

// startServers brings up the status API and the metrics endpoint, each
// owned by g. A failure is logged and the daemon goes on without that
// server: a status socket problem must not stop the box from earning, and
// doctor still checks what it can from outside.
func (a *Agent) startServers(ctx context.Context, g *errgroup.Group) {
	sc := a.o.Config.Status
	if sc.Socket != "" {
		srv, err := status.Listen(a, status.ServerOpts{Socket: sc.Socket, Group: sc.Group, Logger: a.o.Logger, Now: a.o.Now})
		if err != nil {
			a.log.Error("no status API: `edge-agent status` will not reach this daemon", "socket", sc.Socket, "err", err)
		} else {
			g.Go(func() error { return srv.Run(ctx) })
		}
	}
	if sc.MetricsListen != "" {
		a.startMetrics(ctx, g, sc.MetricsListen)
	}
}
