package agent

import (
	"fmt"
	"path/filepath"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/sim"
	"github.com/edge-agent/edge-agent/uplink"
	"github.com/edge-agent/edge-agent/uplink/file"
)

// buildUplinks makes the transports the config enables. Each one's name is
// its key in the outbox's acknowledgement table.
func buildUplinks(cfg *config.Config, signer attest.Signer, o Options) ([]uplink.Uplink, error) {
	var ups []uplink.Uplink
	if f := cfg.Uplinks.File; f.Enabled {
		u, err := file.New(file.Opts{
			Dir:            cfg.SpoolDir(),
			RotateBytes:    int64(f.RotateBytes),
			RotateInterval: f.RotateInterval.Duration,
			Logger:         o.Logger.With("component", "uplink.file"),
			Now:            o.Now,
		})
		if err != nil {
			return nil, fmt.Errorf("agent: uplinks.file: %w", err)
		}
		ups = append(ups, u)
	}
	return ups, nil
}

// buildDrivers makes the configured hardware drivers. GNSS drivers feed the
// location stamp through fix.
func buildDrivers(cfg *config.Config, fix drivers.FixSink, o Options) ([]drivers.Driver, error) {
	var ds []drivers.Driver
	for i, s := range cfg.Drivers.Sim {
		so := sim.DefaultOpts(sim.Kind(s.Kind))
		so.Interval = s.Interval.Duration
		so.Count = s.Count
		so.Now = o.Now
		so.Seed = int64(i + 1)
		if s.Kind == string(sim.KindGNSS) {
			so.OnFix = fix
		}
		if s.NMEAFile != "" {
			data, err := readFileLimited(s.NMEAFile, 64<<20)
			if err != nil {
				return nil, fmt.Errorf("agent: drivers.sim[%d] (%s) nmea_file: %w", i, s.Name, err)
			}
			so.NMEA = data
		}
		so.Dir = s.Dir
		if so.Dir == "" && s.Kind == string(sim.KindCamera) {
			so.Dir = filepath.Join(cfg.Device.DataDir, "sim-camera")
		}
		d, err := sim.New(s.Name, so)
		if err != nil {
			return nil, fmt.Errorf("agent: drivers.sim[%d] (%s): %w", i, s.Name, err)
		}
		ds = append(ds, d)
	}
	return ds, nil
}
