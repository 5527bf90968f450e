package agent

import (
	"context"
	"encoding/hex"
	"fmt"
	"runtime"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/camera"
	"github.com/edge-agent/edge-agent/drivers/env"
	"github.com/edge-agent/edge-agent/drivers/gnss"
	"github.com/edge-agent/edge-agent/drivers/lora"
	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/uplink/file"
	"github.com/edge-agent/edge-agent/uplink/mqtt"
	"github.com/edge-agent/edge-agent/uplink/p2p"
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
	o, s, stored := a.pipeline.Counts()
	encDrops, withoutLoc, encErr := a.pipeline.EncodeFailures()
	boot := a.pipeline.BootID()
	doc := &status.Doc{
		Schema: status.SchemaVersion, Time: now.UTC(), Started: a.started.UTC(),
		Identity: status.Identity{
			DeviceID: a.signer.DeviceID(), PublicKey: hex.EncodeToString(a.signer.KeyID()),
			Version: a.o.Version, Commit: a.o.Commit, GoVersion: runtime.Version(), BootID: hex.EncodeToString(boot[:]),
		},
		Pipeline: status.Pipeline{
			Observed: o, Signed: s, Stored: stored, AppendErrors: a.pipeline.appendErrors.Load(),
			LastAppendError: a.pipeline.LastAppendError(), LastProgress: a.pipeline.LastProgress().UTC(),
			EncodeDrops: encDrops, WithoutLocation: withoutLoc, LastEncodeError: encErr,
		},
		Store: status.Store{
			Path: a.store.Path(), Chain: hex.EncodeToString(st.Chain[:]), HeadSeq: st.HeadSeq,
			Records: st.Records, Bytes: st.Bytes, MaxBytes: st.MaxBytes, FileBytes: st.FileBytes,
			Oldest: st.OldestAppended, Evicted: st.Evicted, PendingGaps: len(st.PendingGaps),
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
	for _, d := range a.drivers {
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
		switch up := a.uplinkNamed(u.Name).(type) {
		case *mqtt.Uplink:
			ms := up.Status()
			us.Connected, us.Server, us.LastError, us.LastErrorAt, us.ClientCertExpiry =
				ms.Connected, ms.Server, ms.LastError, ms.LastErrorAt, ms.ClientCertExpiry
			if ms.Stalled != "" && us.LastError == "" { // connected, but a PUBACK is overdue
				us.LastError, us.LastErrorAt = "stalled: "+ms.Stalled, now
			}
		case *p2p.Uplink:
			ps := up.Status()
			peers := ps.Peers
			us.Peers = &peers
			us.Connected = ps.Peers > 0
			us.Server = fmt.Sprintf("%d peers (%d on the topic), network %q", ps.Peers, ps.TopicPeers, a.o.Config.Uplinks.P2P.Network)
			us.LastError, us.LastErrorAt = ps.LastError, ps.LastErrorAt
		case *file.Uplink:
			us.Server = a.o.Config.SpoolDir()
		}
		if failure != "" && us.LastError == "" {
			us.LastError = failure
		}
		doc.Uplinks = append(doc.Uplinks, us)
	}
	if c, err := status.KernelClock(); err == nil {
		doc.Clock.Synced, doc.Clock.MaxErrorSeconds = c.Synced, c.MaxErrorSeconds
	}
	doc.Disk, _ = status.StatDisk(a.o.Config.Device.DataDir) // an error is reported inside Disk
	if a.pipeline.readOnlyDisk.Load() {
		doc.Disk.ReadOnly = true // writes fail with EROFS, whatever the mount flags say
	}
	return doc, nil
}

func (a *Agent) uplinkNamed(name string) any {
	for _, u := range a.uplinks {
		if u.Name() == name {
			return u
		}
	}
	return nil
}

// driverStatus is one driver's entry: what the agent counted and saw of its
// life, then the family's own view.
func (a *Agent) driverStatus(d drivers.Driver, now time.Time) status.Driver {
	counts := a.counts[d.Name()]
	byKind, last := counts.snapshot()
	ds := status.Driver{Name: d.Name(), Family: "sim", Observations: byKind, LastObservation: last,
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
	switch d := d.(type) {
	case *gnss.Dev:
		s := d.Stats()
		ds.Family = "gnss"
		g := &status.GNSS{Connected: s.Connected, Mode: int(s.LastFix.Mode), Satellites: int(s.LastFix.Sats),
			HDOP: s.LastFix.HDOP, LastFix: s.LastFixAt, Epochs: s.Epochs, Fixes: s.Fixes}
		if s.HaveOffset {
			g.ClockOffsetSeconds = status.Seconds(s.ClockOffset)
		}
		ds.GNSS = g
	case *lora.Dev:
		s := d.Stats()
		ds.Family = "lora"
		l := &status.LoRa{PacketsPerMinute: counts.perMinute(drivers.KindLoRaRX, now), SocketDrops: s.SocketDrops,
			Gateways: []status.LoRaGateway{}}
		for _, g := range s.Gateways {
			l.Gateways = append(l.Gateways, status.LoRaGateway{EUI: g.EUI, LastSeen: g.LastSeen, Packets: map[string]uint64{
				"ok": g.RxOK, "crc_error": g.RxBadCRC, "no_crc": g.RxNoCRC, "invalid": g.RxInvalid}})
		}
		ds.LoRa = l
	case *env.Dev:
		ds.Family = "env"
		e := &status.Env{}
		if s, at, ok := d.Last(); ok {
			e.Chip, e.At, e.TempC, e.PressurePa, e.HumidityPct = s.Chip, at, s.TempC, s.PressurePa, s.HumidityPct
		}
		ds.Env = e
	case *camera.Dev:
		s := d.Stats()
		ds.Family = "camera"
		ds.Camera = &status.Camera{FilesAttested: s.FilesAttested, LastFile: s.LastFile, LastAttested: s.LastAttested,
			Errors: s.Errors, LastError: s.LastError, Skipped: s.Skipped, LastSkipped: s.LastSkipped}
	}
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
		for _, u := range a.uplinks {
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
