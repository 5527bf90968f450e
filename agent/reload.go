package agent

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/uplink"
)

// Reload (SIGHUP): the drivers and uplinks are stopped and rebuilt from the
// new config while the key, the outbox, its chain and the signing pipeline
// stay as they are. What those depend on (device, store, pipeline, status)
// and the set of uplinks (the outbox's acknowledgement table) only change
// with a restart; a config that changes them is refused.

type reloadRequest struct {
	cfg  *config.Config
	done chan error
}

// ErrNotRunning is returned by Reload when the agent is not running.
var ErrNotRunning = errors.New("agent: not running")

// Reload applies cfg to the running agent and returns once the new drivers
// and uplinks run, or why cfg was refused (the old ones then keep running).
// cfg must have passed Validate (config.Load does that).
func (a *Agent) Reload(ctx context.Context, cfg *config.Config) error {
	req := reloadRequest{cfg: cfg, done: make(chan error, 1)}
	select {
	case a.reloads <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-req.done
}

// current is what the last reload set.
func (a *Agent) current() (*config.Config, []drivers.Driver, []uplink.Uplink) {
	a.pmu.RLock()
	defer a.pmu.RUnlock()
	return a.o.Config, a.drivers, a.uplinks
}

func (a *Agent) countsOf(name string) *driverCounts {
	a.pmu.RLock()
	defer a.pmu.RUnlock()
	return a.counts[name]
}

// restartOnly names the first setting that differs and needs a restart.
func restartOnly(old, cfg *config.Config) string {
	switch {
	case old.Device != cfg.Device:
		return "device"
	case old.Store != cfg.Store:
		return "store"
	case old.Pipeline != cfg.Pipeline:
		return "pipeline"
	case !reflect.DeepEqual(old.Status, cfg.Status):
		return "status"
	case old.Log.Format != cfg.Log.Format:
		return "log.format"
	}
	return ""
}

// configuredUplinks is the names buildUplinks gives cfg's uplinks, in its
// order, without building them (a libp2p host would take the old one's port).
func configuredUplinks(cfg *config.Config) []string {
	var n []string
	for _, u := range []struct {
		on   bool
		name string
	}{{cfg.Uplinks.File.Enabled, "file"}, {cfg.Uplinks.MQTT.Enabled, "mqtt"}, {cfg.Uplinks.P2P.Enabled, "p2p"}} {
		if u.on {
			n = append(n, u.name)
		}
	}
	return n
}

func uplinkNames(ups []uplink.Uplink) []string {
	n := make([]string, len(ups))
	for i, u := range ups {
		n[i] = u.Name()
	}
	return n
}

// apply runs in Run's goroutine. It stops the drivers and uplinks (a new
// LoRa socket or libp2p host needs the old one's port), builds the new ones,
// and on failure builds the old config's again.
func (a *Agent) apply(ctx context.Context, cfg *config.Config, stopDrivers, stopUplinks *func()) error {
	old, _, oldUps := a.current()
	if k := restartOnly(old, cfg); k != "" {
		return fmt.Errorf("agent: reload: %s settings changed: restart the service to apply them (systemctl restart edge-agent)", k)
	}
	if a.o.Uplinks == nil && !slices.Equal(configuredUplinks(cfg), uplinkNames(oldUps)) {
		return fmt.Errorf("agent: reload: the uplinks changed from %v to %v: restart the service to add or remove one (systemctl restart edge-agent)",
			uplinkNames(oldUps), configuredUplinks(cfg))
	}
	(*stopDrivers)()
	(*stopUplinks)()
	err := a.rebuild(cfg)
	if err != nil {
		a.log.Error("reload: the new config's drivers or uplinks failed to build; going back to the old config", "err", err)
		if berr := a.rebuild(old); berr != nil {
			a.log.Error("reload: the old config failed to build again; restarting the previous drivers and uplinks as they were", "err", berr)
		}
	}
	*stopUplinks = a.startUplinks(ctx)
	*stopDrivers = a.startDrivers(ctx)
	if err != nil {
		return fmt.Errorf("agent: reload: %w", err)
	}
	_, ds, ups := a.current()
	a.log.Info("reloaded the config", "drivers", len(ds), "uplinks", len(ups))
	a.warnIdle(ds, ups)
	return nil
}

// rebuild swaps in cfg's drivers and uplinks (the injected ones stay).
func (a *Agent) rebuild(cfg *config.Config) error {
	ups := a.o.Uplinks
	if ups == nil {
		var err error
		if ups, err = buildUplinks(cfg, a.signer, a.o, a.flushing); err != nil {
			return err
		}
	}
	ds := a.o.Drivers
	if ds == nil {
		var err error
		if ds, err = buildDrivers(cfg, a.fixSink, a.o); err != nil {
			closeAll(ups)
			return err
		}
	}
	a.pmu.Lock()
	a.o.Config, a.drivers, a.uplinks = cfg, ds, ups
	for _, d := range ds {
		if a.counts[d.Name()] == nil {
			a.counts[d.Name()] = newDriverCounts()
		}
	}
	a.pmu.Unlock()
	a.mu.Lock()
	a.probes = map[string]probeResult{}
	a.states = map[string]driverState{}
	for _, d := range ds {
		a.states[d.Name()] = driverState{state: status.StateLoaded}
	}
	a.mu.Unlock()
	return nil
}

// closeAll releases uplinks that were built but never run (p2p holds a host).
func closeAll(ups []uplink.Uplink) {
	for _, u := range ups {
		if c, ok := u.(interface{ Close() error }); ok {
			c.Close()
		}
	}
}

// startUplinks runs the current uplinks under supervision; the returned
// func stops them and waits. They outlive ctx: at shutdown the final flush
// still needs them.
func (a *Agent) startUplinks(ctx context.Context) func() {
	uctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var g errgroup.Group
	_, _, ups := a.current()
	for _, u := range ups {
		q := a.store.Queue(u.Name())
		g.Go(func() error {
			a.supervise(uctx, "uplink "+u.Name(), func(ctx context.Context) error { return u.Run(ctx, q) }, nil)
			return nil
		})
	}
	return func() { cancel(); g.Wait() }
}

// startDrivers probes and runs the current drivers; the returned func stops
// them and waits.
func (a *Agent) startDrivers(ctx context.Context) func() {
	dctx, cancel := context.WithCancel(ctx)
	var g errgroup.Group
	_, ds, _ := a.current()
	for _, d := range ds {
		emit := a.countsOf(d.Name()).wrap(a.pipeline.Emit, a.o.Now)
		g.Go(func() error {
			a.supervise(dctx, "driver "+d.Name(), func(ctx context.Context) error {
				return d.Run(ctx, emit)
			}, func(st driverState) {
				a.mu.Lock()
				a.states[d.Name()] = st
				a.mu.Unlock()
			})
			return nil
		})
	}
	// Probe once the drivers run: a probe of a running driver judges from
	// what the driver reads instead of opening its port a second time.
	a.probeDrivers(dctx, &g, ds)
	g.Go(func() error { a.watchAcks(dctx); return nil })
	return func() { cancel(); g.Wait() }
}
