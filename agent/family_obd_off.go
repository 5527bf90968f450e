//go:build noobd

package agent

import (
	"errors"
	"fmt"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/status"
)

// OBDBuilt reports whether this build reads OBD-II adapters: this one
// (-tags noobd, for gateways) does not.
const OBDBuilt = false

// obdFamily only refuses [[drivers.obd]] in this build.
var obdFamily = family{name: "obd", build: buildOBDs, status: func(drivers.Driver, *status.Driver, driverView) bool { return false }}

// ErrNoOBD is returned when the config has [[drivers.obd]] in a build
// without it.
var ErrNoOBD = errors.New("this build has no OBD-II driver (a small-device build made with -tags noobd): remove [[drivers.obd]] or install the full build")

func buildOBDs(cfg *config.Config, _ drivers.FixSink, _ Options) ([]drivers.Driver, error) {
	if len(cfg.Drivers.OBD) > 0 {
		return nil, fmt.Errorf("agent: drivers.obd[0] (%s): %w", cfg.Drivers.OBD[0].Name, ErrNoOBD)
	}
	return nil, nil
}
