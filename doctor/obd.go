//go:build !noobd

package doctor

import (
	"context"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers/obd"
)

// probeOBD asks the adapter once (AT Z), which finds a wrong baud rate or
// an adapter that does not answer.
func probeOBD(o config.OBD) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		d, err := obd.New(o.Name, &obd.Opts{Device: o.Device, Bauds: obdBauds(o.Baud), PIDs: o.PIDs})
		if err == nil {
			_, err = d.Probe(ctx)
		}
		return err
	}
}

func obdBauds(b int) []int {
	if b == 0 {
		return nil // the driver's 38400, then 9600
	}
	return []int{b}
}
