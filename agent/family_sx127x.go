//go:build !nosx127x

package agent

import (
	"strconv"
	"strings"
	"time"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/lora/sx127x"
	"github.com/edge-agent/edge-agent/status"
)

// SX127xBuilt reports whether this build drives single-channel SX127x
// radios over SPI; small builds for gateways (-tags nosx127x) leave it out.
const SX127xBuilt = true

// sx127xFamily is [[drivers.lora]] with mode = "sx127x": a single-channel
// radio on SPI. loraFamily builds it, in the config's order; in status it is
// family "lora" with a LoRa section of mode "sx127x".
var sx127xFamily = family{name: "lora", status: sx127xStatus}

func buildSX127x(l config.LoRa, o Options) (drivers.Driver, error) {
	opts := sx127xOpts(l, o)
	return sx127x.NewBoard(l.Name, sx127x.Board{SPI: l.SPI, Reset: l.ResetPin, DIO0: l.DIO0Pin}, &opts)
}

func sx127xOpts(l config.LoRa, o Options) sx127x.Opts {
	cr, _ := strconv.Atoi(strings.TrimPrefix(l.CodingRate, "4/")) // validated by config
	opts := sx127x.DefaultOpts()
	opts.FreqHz, opts.SF, opts.BWHz = uint64(l.FreqHz), uint8(l.SF), uint32(l.BandwidthHz)
	opts.CodingRate, opts.SyncWord, opts.TxPowerDBm = uint8(cr), byte(l.SyncWord), int8(l.TxPowerDBm)
	opts.Gateway = strings.ToUpper(strings.NewReplacer("-", "", ":", "").Replace(l.GatewayEUI))
	opts.IncludePayload = l.IncludePayload
	opts.Logger, opts.Now = o.Logger, o.Now
	return opts
}

func sx127xStatus(d drivers.Driver, ds *status.Driver, v driverView) bool {
	bd, ok := d.(*sx127x.BoardDev)
	if !ok {
		return false
	}
	_, last := v.counts.snapshot()
	ds.LoRa = sx127xLoRa(bd.Stats(), v.counts.perMinute(drivers.KindLoRaRX, v.now), last)
	return true
}

// sx127xLoRa is a radio's LoRa section: the radio is its one gateway, and
// the frames it refused are "malformed" by reason.
func sx127xLoRa(s sx127x.BoardStats, perMinute float64, lastRX time.Time) *status.LoRa {
	l := &status.LoRa{Mode: "sx127x", PacketsPerMinute: perMinute, Connected: &s.Open, LastError: s.LastError,
		Gateways: []status.LoRaGateway{{EUI: s.Gateway, LastSeen: lastRX, Packets: map[string]uint64{
			"ok": s.RxOK, "crc_error": s.RxBadCRC, "no_crc": s.RxNoCRC, "tx_sent": s.TxOK, "tx_failed": s.TxFailed}}}}
	if s.Spurious > 0 {
		l.Malformed = map[string]uint64{"spurious": s.Spurious}
	}
	return l
}
