package agent

import (
	"fmt"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/gnss"
	"github.com/edge-agent/edge-agent/status"
)

// gnssFamily is [[drivers.gnss]]: a receiver on a serial port or via gpsd.
var gnssFamily = family{name: "gnss", build: buildGNSS, status: gnssDriverStatus}

func buildGNSS(cfg *config.Config, fix drivers.FixSink, o Options) ([]drivers.Driver, error) {
	var ds []drivers.Driver
	for i, g := range cfg.Drivers.GNSS {
		opts := gnssOpts(g, fix, o)
		d, err := gnss.New(g.Name, &opts)
		if err != nil {
			return nil, fmt.Errorf("agent: drivers.gnss[%d] (%s): %w", i, g.Name, err)
		}
		ds = append(ds, d)
	}
	return ds, nil
}

func gnssOpts(g config.GNSS, fix drivers.FixSink, o Options) gnss.Opts {
	opts := gnss.DefaultOpts()
	opts.Source = gnss.Source(g.Source)
	opts.Device, opts.Baud, opts.UBX = g.Device, g.Baud, g.UBX
	opts.GPSDAddr = g.GPSDAddr
	opts.NoChecksum = g.Checksum == "optional"
	opts.Interval = g.Interval.Duration
	opts.OnFix = fix
	opts.Logger = o.Logger // the driver adds its component and name
	opts.Now = o.Now
	return opts
}

func gnssDriverStatus(d drivers.Driver, ds *status.Driver, v driverView) bool {
	gd, ok := d.(*gnss.Dev)
	if !ok {
		return false
	}
	s := gd.Stats()
	g := gnssStatus(s)
	if s.Sentences+s.UBXFrames > 0 && (ds.State == status.StateSkipped || ds.State == status.StateFailed) && v.life.state == status.StateLoaded {
		// The probe's verdict is history once the driver decodes.
		ds.State, ds.Reason = v.life.state, v.life.reason
	}
	if s.HaveOffset {
		g.ClockOffsetSeconds = status.Seconds(s.ClockOffset)
	}
	ds.GNSS = g
	return true
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
