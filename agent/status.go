package agent

import (
	"context"
	"encoding/hex"
	"fmt"
	"runtime"
	"sort"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/energy"
	"github.com/edge-agent/edge-agent/drivers/env"
	"github.com/edge-agent/edge-agent/drivers/gnss"
	"github.com/edge-agent/edge-agent/drivers/lora"
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
		Schema: status.SchemaVersion, Time: now.UTC(), Started: a.started.UTC(),
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
	if cameraStatus(d, &ds) || obdStatus(d, &ds) {
		return ds
	}
	switch d := d.(type) {
	case *gnss.Dev:
		s := d.Stats()
		ds.Family = "gnss"
		g := gnssStatus(s)
		if s.Sentences+s.UBXFrames > 0 && (ds.State == status.StateSkipped || ds.State == status.StateFailed) && life.state == status.StateLoaded {
			// The probe's verdict is history once the driver decodes.
			ds.State, ds.Reason = life.state, life.reason
		}
		if s.HaveOffset {
			g.ClockOffsetSeconds = status.Seconds(s.ClockOffset)
		}
		ds.GNSS = g
	case *lora.Dev:
		ds.Family = "lora"
		ds.LoRa = loraStatus(d.Stats(), counts.perMinute(drivers.KindLoRaRX, now))
	case *env.Dev:
		ds.Family = "env"
		e := &status.Env{}
		if s, at, ok := d.Last(); ok {
			e.Chip, e.At, e.TempC, e.PressurePa, e.HumidityPct = s.Chip, at, s.TempC, s.PressurePa, s.HumidityPct
		}
		ds.Env = e
	case *energy.Dev:
		s := d.Stats()
		ds.Family = "energy"
		ds.Energy = &status.Energy{Connected: s.Connected, Profile: s.Profile, Model: s.Model, Polls: s.Polls,
			LastAt: s.LastAt, ImportWh: s.Last.ImportWh, ExportWh: s.Last.ExportWh, PowerW: s.Last.PowerW,
			Errors: s.Errors, Flags: s.Flags, LastError: s.LastError}
	}
	return ds
}

// gnssStatus is a GNSS driver's status entry.
func gnssStatus(s gnss.Stats) *status.GNSS {
	g := &status.GNSS{Connected: s.Connected, Mode: int(s.LastFix.Mode), LastFix: s.LastFixAt,
		Epochs: s.Epochs, Fixes: s.Fixes, Sentences: s.Sentences + s.UBXFrames,
		Unused: s.Unknown + s.UBXOther, LastReject: s.LastReject,
		Rejected: map[string]uint64{"bad_checksum": s.BadChecksum, "no_checksum": s.NoChecksum,
			"garbled": s.Garbled, "invalid": s.Invalid, "late": s.Late, "bad_date": s.BadDate, "time_back": s.TimeBack}}
	if s.LastFix.Sats != nil {
		g.Satellites = int(*s.LastFix.Sats)
	}
	if s.LastFix.HDOP != nil {
		g.HDOP = *s.LastFix.HDOP
	}
	return g
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

// loraStatus maps a LoRa driver's Stats, listing at most
// status.MaxStatusGateways gateways (the most recently seen).
func loraStatus(s lora.Stats, perMinute float64) *status.LoRa {
	l := &status.LoRa{PacketsPerMinute: perMinute, SocketDrops: s.SocketDrops, Gateways: []status.LoRaGateway{},
		Mode: s.Mode, Listen: s.Listen, Tap: s.Tap, LastError: s.LastError, MaxGateways: s.MaxGateways,
		GatewaysRefused: s.GatewaysRefused, GatewaysExpired: s.GatewaysExpired, TxRecords: s.TxRecords}
	if len(s.Malformed) > 0 {
		l.Malformed = s.Malformed
	}
	if s.Mode == lora.ModeConcentratord || s.Mode == lora.ModeMQTT {
		l.Connected = &s.Connected
	}
	gws := s.Gateways
	if len(gws) > status.MaxStatusGateways {
		// Stats hands over its own copy: sorting it in place is fine.
		sort.Slice(gws, func(i, j int) bool { return gws[i].LastSeen.After(gws[j].LastSeen) })
		l.GatewaysOmitted = len(gws) - status.MaxStatusGateways
		gws = gws[:status.MaxStatusGateways]
		sort.Slice(gws, func(i, j int) bool { return gws[i].EUI < gws[j].EUI })
	}
	for _, g := range gws {
		l.Gateways = append(l.Gateways, status.LoRaGateway{EUI: g.EUI, LastSeen: g.LastSeen, Packets: map[string]uint64{
			"ok": g.RxOK, "crc_error": g.RxBadCRC, "no_crc": g.RxNoCRC, "invalid": g.RxInvalid,
			"tx_sent": g.TxSent, "tx_acked": g.TxAcked, "tx_failed": g.TxFailed}})
	}
	for _, u := range s.Upstreams {
		su := status.LoRaUpstream{Name: u.Name, Addr: u.Addr, UplinkOnly: u.UplinkOnly, State: u.State, LastError: u.LastError,
			LastAck: u.LastAck, Sent: u.Sent, Acks: u.Acks, AckRatio: u.AckRatio, Unsent: u.Unsent, Unreachable: u.Unreachable,
			Downlinks: u.Downlinks, DownlinksRelayed: u.DownlinksRelayed, DownlinksDropped: u.DownlinksDropped,
			TokensRemapped: u.TokensRemapped, TxAcksReturned: u.TxAcksReturned}
		if u.Resolved.IsValid() {
			su.Resolved = u.Resolved.String()
		}
		l.Upstreams = append(l.Upstreams, su)
	}
	return l
}
