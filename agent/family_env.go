package agent

import (
	"fmt"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/env"
	"github.com/edge-agent/edge-agent/status"
)

// envFamily is [[drivers.env]]: a BME280/BMP280 on I²C.
var envFamily = family{name: "env", build: buildEnvs, status: envStatus}

func buildEnvs(cfg *config.Config, _ drivers.FixSink, o Options) ([]drivers.Driver, error) {
	var ds []drivers.Driver
	for i, e := range cfg.Drivers.Env {
		opts := envOpts(e, o)
		d, err := env.New(e.Name, &opts)
		if err != nil {
			return nil, fmt.Errorf("agent: drivers.env[%d] (%s): %w", i, e.Name, err)
		}
		ds = append(ds, d)
	}
	return ds, nil
}

func envOpts(e config.Env, o Options) env.Opts {
	opts := env.DefaultOpts()
	opts.Bus, opts.Addr, opts.Oversampling = e.Bus, uint16(e.Addr), e.Oversampling
	opts.Interval = e.Interval.Duration
	opts.Logger = o.Logger
	opts.Now = o.Now
	return opts
}

func envStatus(d drivers.Driver, ds *status.Driver, _ driverView) bool {
	ed, ok := d.(*env.Dev)
	if !ok {
		return false
	}
	e := &status.Env{}
	if s, at, ok := ed.Last(); ok {
		e.Chip, e.At, e.TempC, e.PressurePa, e.HumidityPct = s.Chip, at, s.TempC, s.PressurePa, s.HumidityPct
	}
	ds.Env = e
	return true
}
