//go:build !nosx127x

package agent

import (
	"strconv"
	"strings"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/lora/sx127x"
)

// SX127xBuilt reports whether this build drives single-channel SX127x
// radios over SPI; small builds for gateways (-tags nosx127x) leave it out.
const SX127xBuilt = true

func buildSX127x(l config.LoRa, o Options) (drivers.Driver, error) {
	cr, _ := strconv.Atoi(strings.TrimPrefix(l.CodingRate, "4/")) // validated by config
	opts := sx127x.DefaultOpts()
	opts.FreqHz, opts.SF, opts.BWHz = uint64(l.FreqHz), uint8(l.SF), uint32(l.BandwidthHz)
	opts.CodingRate, opts.SyncWord, opts.TxPowerDBm = uint8(cr), byte(l.SyncWord), int8(l.TxPowerDBm)
	opts.Gateway = strings.ToUpper(strings.NewReplacer("-", "", ":", "").Replace(l.GatewayEUI))
	opts.IncludePayload = l.IncludePayload
	opts.Logger, opts.Now = o.Logger, o.Now
	return sx127x.NewBoard(l.Name, sx127x.Board{SPI: l.SPI, Reset: l.ResetPin, DIO0: l.DIO0Pin}, &opts)
}
