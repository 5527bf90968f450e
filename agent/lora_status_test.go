package agent

import (
	"fmt"
	"testing"
	"time"

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
