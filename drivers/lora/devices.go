package lora

import (
	"net/url"
	"strings"

	"github.com/edge-agent/edge-agent/drivers"
)

var _ drivers.DeviceLister = (*Dev)(nil)

// Devices implements drivers.DeviceLister: concentratord's event socket
// (mode concentratord) or the gateway bridge's broker (mode mqtt), as Run
// dials them. Mode udp binds its own port and opens nothing.
func (d *Dev) Devices() []drivers.Device {
	switch d.o.Mode {
	case ModeConcentratord:
		if path, ok := strings.CutPrefix(d.o.EventURL, "ipc://"); ok {
			return []drivers.Device{{Kind: drivers.DeviceSocket, Path: path, What: "concentratord event socket"}}
		}
		if addr, ok := strings.CutPrefix(d.o.EventURL, "tcp://"); ok {
			return []drivers.Device{{Kind: drivers.DeviceTCP, Path: addr, What: "concentratord"}}
		}
	case ModeMQTT:
		if u, err := url.Parse(d.o.MQTT.Server); err == nil && u.Host != "" {
			return []drivers.Device{{Kind: drivers.DeviceTCP, Path: u.Host, What: "lora broker"}}
		}
	}
	return nil
}
