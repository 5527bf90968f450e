package doctor

import (
	"strings"
	"testing"
)

// TestUnreachableHintNamesTheRightKey: a gpsd or Modbus server that does not
// answer is not an uplink, so the hint must point at the driver's key.
func TestUnreachableHintNamesTheRightKey(t *testing.T) {
	tests := []struct {
		e    Endpoint
		want string
	}{
		{Endpoint{Uplink: "mqtt", Addr: "broker.example:8883"}, "[uplinks.mqtt]"},
		{Endpoint{Uplink: "p2p", Addr: "10.0.0.1:4001"}, "[uplinks.p2p]"},
		{Endpoint{Uplink: "gpsd", Addr: "127.0.0.1:2947"}, "gpsd_addr of [[drivers.gnss]]"},
		{Endpoint{Uplink: "modbus", Addr: "192.0.2.7:502"}, "addr of [[drivers.energy]]"},
		{Endpoint{Uplink: "concentratord", Addr: "127.0.0.1:5555"}, "event_url of [[drivers.lora]]"},
		{Endpoint{Uplink: "lora broker", Addr: "127.0.0.1:1883"}, "mqtt_server of [[drivers.lora]]"},
	}
	for _, tt := range tests {
		if got := nextUnreachable(tt.e); !strings.Contains(got, tt.want) {
			t.Errorf("%s endpoint: hint %q does not name %s", tt.e.Uplink, got, tt.want)
		}
	}
}
