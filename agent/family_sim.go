package agent

import (
	"fmt"
	"path/filepath"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/sim"
	"github.com/edge-agent/edge-agent/status"
)

// simFamily is [[drivers.sim]]: simulated hardware for demos and tests.
var simFamily = family{name: "sim", build: buildSims, status: simStatus}

func buildSims(cfg *config.Config, fix drivers.FixSink, o Options) ([]drivers.Driver, error) {
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

// simStatus: a simulated driver has no section of its own; what the agent
// counted is its status.
func simStatus(d drivers.Driver, _ *status.Driver, _ driverView) bool {
	_, ok := d.(*sim.Dev)
	return ok
}
