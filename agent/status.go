package agent

import (
	"context"
	"encoding/hex"
	"fmt"
	"runtime"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/uplink"
	"github.com/edge-agent/edge-agent/uplink/file"
	"github.com/edge-agent/edge-agent/uplink/mqtt"
)

// driverState is what the agent knows of a driver's life.
type driverState struct {
	state  string // status.State…
	reason string
}

// Status implements status.Source: the document behind `edge-agent status`,
// doctor and the metrics. It is cheap (locks and one short read
// transaction) and safe from any goroutine.
//
// Family details come from the concrete driver and uplink types, which this
// package built: drivers stay leaves that import nothing of the daemon.
func (a *Agent) Status(ctx context.Context) (*status.Doc, error) {
	now := a.o.Now()
	st, err := a.store.Stats()
	if err != nil {
		return nil, fmt.Errorf("agent: status: %w", err)
	}
	ps := a.pipeline.Stats()
	boot := a.pipeline.BootID()
	doc := &status.Doc{
		Schema: status.SchemaVersion, Time: now.UTC(), Started: a.startedAt().UTC(),
		Identity: status.Identity{
			DeviceID: a.signer.DeviceID(), PublicKey: hex.EncodeToString(a.signer.KeyID()),
			Version: a.o.Version, Commit: a.o.Commit, GoVersion: runtime.Version(), BootID: hex.EncodeToString(boot[:]),
			Key: a.keyStatus(),
		},
		Pipeline: status.Pipeline{
			Observed: ps.Observed, Signed: ps.Signed, Stored: ps.Stored, AppendErrors: ps.AppendErrors,
			LastAppendError: ps.LastAppendError, LastProgress: ps.LastProgress.UTC(),
			EncodeDrops: ps.EncodeDrops, WithoutLocation: ps.WithoutLocation, LastEncodeError: ps.LastEncodeError,
		},
		Store: status.Store{
			Path: a.store.Path(), Chain: hex.EncodeToString(st.Chain[:]), HeadSeq: st.HeadSeq,
			Records: st.Records, Bytes: st.Bytes, MaxBytes: st.MaxBytes, FileBytes: st.FileBytes,
			Oldest: st.OldestAppended, Evicted: st.Evicted, PendingGaps: len(st.PendingGaps),
			WriteRate: st.Writes.PerSecond, WrittenBytes: st.Writes.Bytes, Commits: st.Writes.Commits,
		},
		Drivers: []status.Driver{},
		Uplinks: []status.Uplink{},
	}
	if !st.LastCheck.At.IsZero() {
		doc.Store.LastCheck = &status.Check{At: st.LastCheck.At, Error: st.LastCheck.Err}
	}
	if r := st.Recovery; r != nil {
		doc.Store.Recovery = &status.Recovery{At: r.At, MovedTo: r.MovedTo, Reason: r.Reason}
	}
	cfg, drvs, ups := a.current()
	for _, d := range drvs {
		ds := a.driverStatus(d, now)
		if ds.GNSS != nil && ds.GNSS.ClockOffsetSeconds != nil && doc.Clock.GNSSOffsetSeconds == nil {
			doc.Clock.GNSSOffsetSeconds = ds.GNSS.ClockOffsetSeconds
		}
		doc.Drivers = append(doc.Drivers, ds)
	}
	for _, u := range st.Uplinks {
		if !u.Configured {
			continue
		}
		us := status.Uplink{Name: u.Name, AckedSeq: u.Acked, Backlog: u.Backlog, Connected: true,
			Delivered: u.Acked - min(u.Acked, a.ackedAtStart[u.Name])}
		a.mu.Lock()
		us.LastAck = a.lastAck[u.Name]
		failure := a.failures["uplink "+u.Name]
		a.mu.Unlock()
		up := uplinkNamed(ups, u.Name)
		if p2pUplinkStatus(up, &us, cfg.Uplinks.P2P.Network) {
			up = nil
		}
		switch up := up.(type) {
		case *mqtt.Uplink:
			ms := up.Status()
			us.Connected, us.Server, us.LastError, us.LastErrorAt, us.ClientCertExpiry =
				ms.Connected, ms.Server, ms.LastError, ms.LastErrorAt, ms.ClientCertExpiry
			if ms.Stalled != "" && us.LastError == "" { // connected, but a PUBACK is overdue
				us.LastError, us.LastErrorAt = "stalled: "+ms.Stalled, now
			}
		case *file.Uplink:
			us.Server = cfg.SpoolDir()
		}
		if failure != "" && us.LastError == "" {
			us.LastError = failure
		}
		doc.Uplinks = append(doc.Uplinks, us)
	}
	if c, err := status.KernelClock(); err == nil {
		doc.Clock.Synced, doc.Clock.MaxErrorSeconds = c.Synced, c.MaxErrorSeconds
		doc.Clock.PPS = c.PPS
	} else {
		doc.Clock.Error = err.Error()
	}
	doc.Clock.Source = ps.ClockSource
	if a.cpus != nil {
		doc.CPUs = &status.CPUs{InUse: a.cpus.Procs(), Max: a.cpus.Max(), Switches: a.cpus.Switches(), FixedBy: a.cpus.Fixed()}
	}
	doc.Disk, _ = status.StatDisk(cfg.Device.DataDir) // an error is reported inside Disk
	if ps.ReadOnlyDisk {
		doc.Disk.ReadOnly = true // writes fail with EROFS, whatever the mount flags say
	}
	doc.Update = status.ReadUpdate(cfg.Device.DataDir)
	return doc, nil
}

func uplinkNamed(ups []uplink.Uplink, name string) any {
	for _, u := range ups {
		if u.Name() == name {
			return u
		}
	}
	return nil
}

// driverStatus is one driver's entry: what the agent counted and saw of its
// life, then the family's own view.
func (a *Agent) driverStatus(d drivers.Driver, now time.Time) status.Driver {
	counts := a.countsOf(d.Name())
	byKind, last := counts.snapshot()
	ds := status.Driver{Name: d.Name(), Observations: byKind, LastObservation: last,
		PerMinute: counts.perMinute("", now)}
	a.mu.Lock()
	life := a.states[d.Name()]
	probe, probed := a.probes[d.Name()]
	a.mu.Unlock()
	ds.State, ds.Reason = life.state, life.reason
	// A driver that runs but has heard nothing while its probe found no
	// hardware is, for a field tech, "skipped": that is the useful line.
	if probed && probe.Outcome != drivers.Loaded && ds.State == status.StateLoaded && last.IsZero() {
		ds.State = status.StateSkipped
		if probe.Outcome == drivers.Failed {
			ds.State = status.StateFailed
		}
		if probe.Err != nil {
			ds.Reason = probe.Err.Error()
		}
	}
	familyStatus(d, &ds, driverView{counts: counts, life: life, now: now})
	return ds
}

// watchAcks notes when each uplink's acknowledgements last moved, for the
// "last ack" age that tells a tech whether delivery is alive.
func (a *Agent) watchAcks(ctx context.Context) {
	prev := map[string]uint64{}
	for name, v := range a.ackedAtStart {
		prev[name] = v
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, _, ups := a.current()
		for _, u := range ups {
			acked, err := a.store.Queue(u.Name()).Acked()
			if err != nil || acked == prev[u.Name()] {
				continue
			}
			prev[u.Name()] = acked
			a.mu.Lock()
			a.lastAck[u.Name()] = a.o.Now()
			a.mu.Unlock()
		}
	}
}

// startedAt is when Run started, the zero time before.
func (a *Agent) startedAt() time.Time {
	if t := a.started.Load(); t != nil {
		return *t
	}
	return time.Time{}
}
