//go:build !noobd

package agent

import (
	"fmt"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/obd"
	"github.com/edge-agent/edge-agent/status"
)

// OBDBuilt reports whether this build reads OBD-II adapters; small builds
// for gateways (-tags noobd) leave it out.
const OBDBuilt = true

// obdFamily is [[drivers.obd]]: an ELM327 OBD-II adapter.
var obdFamily = family{name: "obd", build: buildOBDs, status: obdStatus}

func buildOBDs(cfg *config.Config, _ drivers.FixSink, o Options) ([]drivers.Driver, error) {
	var ds []drivers.Driver
	for i, c := range cfg.Drivers.OBD {
		d, err := obd.New(c.Name, obdOpts(c, o))
		if err != nil {
			return nil, fmt.Errorf("agent: drivers.obd[%d] (%s): %w", i, c.Name, err)
		}
		ds = append(ds, d)
	}
	return ds, nil
}

func obdOpts(c config.OBD, o Options) *obd.Opts {
	opts := obd.DefaultOpts()
	opts.Device, opts.PIDs = c.Device, c.PIDs
	if c.Baud != 0 {
		opts.Bauds = []int{c.Baud}
	}
	opts.Interval, opts.IdleRetry, opts.DTCInterval = c.Interval.Duration, c.IdleRetry.Duration, c.DTCInterval.Duration
	opts.NoVIN, opts.VINHash = c.VIN == "off", c.VIN == "hash"
	opts.Logger = o.Logger // the driver adds its component and name
	opts.Now = o.Now
	return &opts
}

// obdStatus fills ds when d is an OBD-II driver.
func obdStatus(d drivers.Driver, ds *status.Driver, _ driverView) bool {
	od, ok := d.(*obd.Dev)
	if !ok {
		return false
	}
	s := od.Stats()
	ds.OBD = &status.OBD{State: s.State, Baud: s.Baud, Adapter: s.Adapter, Protocol: s.Protocol, Offered: s.Offered,
		Samples: s.Samples, LastAt: s.LastAt, Quirks: s.Quirks, Reconnect: s.Reconnect, LastError: s.LastError}
	return true
}
