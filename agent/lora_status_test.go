package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers/lora"
	"github.com/edge-agent/edge-agent/status"
)

// TestLoRaStatusBounded: however many gateways a driver tracks, the status
// document (and so /metrics) lists at most status.MaxStatusGateways, the
// most recently seen, and says how many it left out.
func TestLoRaStatusBounded(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var s lora.Stats
	for i := range 250 {
		s.Gateways = append(s.Gateways, lora.GatewayStats{EUI: fmt.Sprintf("%016X", i), LastSeen: t0.Add(time.Duration(i) * time.Second)})
	}
	l := loraStatus(s, 0)
	if len(l.Gateways) != status.MaxStatusGateways || l.GatewaysOmitted != 150 {
		t.Fatalf("%d listed, %d omitted", len(l.Gateways), l.GatewaysOmitted)
	}
	if l.Gateways[0].EUI != fmt.Sprintf("%016X", 150) || l.Gateways[99].EUI != fmt.Sprintf("%016X", 249) {
		t.Fatalf("listed %s … %s; want the 100 most recent, sorted", l.Gateways[0].EUI, l.Gateways[99].EUI)
	}
}

// TestLoRaConfigWiring: the [[drivers.lora]] keys reach the driver.
func TestLoRaConfigWiring(t *testing.T) {
	c, err := config.Parse([]byte(`version = 1
[[drivers.lora]]
name = "hotspot"
listen = "127.0.0.1:0"
gateways = ["AA-55-5A-00-00-00-00-01"]
max_gateways = 5
[[drivers.lora.upstreams]]
name = "helium"
addr = "127.0.0.1:1680"
[[drivers.lora.upstreams]]
addr = "ns.example:1700"
uplink_only = true
gateways = ["AA555A0000000001"]
`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := buildLoRa(c.Drivers.LoRa[0], Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := d.(*lora.Dev).Stats()
	if s.Tap || s.MaxGateways != 5 || len(s.Upstreams) != 2 || s.Upstreams[0].Name != "helium" || s.Upstreams[1].Name != "ns.example:1700" || !s.Upstreams[1].UplinkOnly {
		t.Fatalf("stats %+v", s)
	}
}
