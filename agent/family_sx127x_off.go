//go:build nosx127x

package agent

import (
	"errors"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/status"
)

// SX127xBuilt reports whether this build drives SX127x radios: this one
// (-tags nosx127x, for gateways with a concentrator) does not.
const SX127xBuilt = false

// sx127xFamily only refuses mode = "sx127x" in this build.
var sx127xFamily = family{name: "lora", status: func(drivers.Driver, *status.Driver, driverView) bool { return false }}

// ErrNoSX127x is returned for mode = "sx127x" in a build without it.
var ErrNoSX127x = errors.New(`this build has no SX127x driver (a small-device build made with -tags nosx127x): use mode = "udp", "concentratord" or "mqtt", or install the full build`)

func buildSX127x(config.LoRa, Options) (drivers.Driver, error) { return nil, ErrNoSX127x }
