package agent

import (
	"fmt"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/energy"
	"github.com/edge-agent/edge-agent/status"
)

// energyFamily is [[drivers.energy]]: a Modbus meter or inverter (RTU or TCP).
var energyFamily = family{name: "energy", build: buildEnergy, status: energyStatus}

func buildEnergy(cfg *config.Config, _ drivers.FixSink, o Options) ([]drivers.Driver, error) {
	var ds []drivers.Driver
	for i, c := range cfg.Drivers.Energy {
		d, err := energy.New(c.Name, energyOpts(c, o))
		if err != nil {
			return nil, fmt.Errorf("agent: drivers.energy[%d] (%s): %w", i, c.Name, err)
		}
		ds = append(ds, d)
	}
	return ds, nil
}

func energyOpts(c config.Energy, o Options) *energy.Opts {
	return &energy.Opts{Transport: c.Transport, Device: c.Device, Baud: c.Baud, Parity: c.Parity, StopBits: c.StopBits,
		Addr: c.Addr, Slave: c.Slave, Profile: c.Profile, SunSpecBase: c.SunSpecBase, MaxPowerW: float64(c.MaxPowerW),
		Interval: c.Interval.Duration, Timeout: c.Timeout.Duration,
		Logger: o.Logger, Now: o.Now}
}

func energyStatus(d drivers.Driver, ds *status.Driver, _ driverView) bool {
	ed, ok := d.(*energy.Dev)
	if !ok {
		return false
	}
	s := ed.Stats()
	ds.Energy = &status.Energy{Connected: s.Connected, Profile: s.Profile, Model: s.Model, Polls: s.Polls,
		LastAt: s.LastAt, ImportWh: s.Last.ImportWh, ExportWh: s.Last.ExportWh, PowerW: s.Last.PowerW,
		Errors: s.Errors, Flags: s.Flags, LastError: s.LastError}
	return true
}
