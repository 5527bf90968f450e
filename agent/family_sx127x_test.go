//go:build !nosx127x

package agent

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers/lora/sx127x"
)

// TestSX127xStatus: a configured SX127x radio is a LoRa driver in status,
// with its LoRa section: mode, gateway, whether the radio is open and why
// not. (It used to show as family "sim" with no section at all.)
func TestSX127xStatus(t *testing.T) {
	dir := t.TempDir()
	cfg := configIn(dir)
	c, err := config.Parse([]byte(`version = 1
[[drivers.lora]]
name = "radio"
mode = "sx127x"
gateway_eui = "B827EBFFFE000001"
spi = "` + filepath.Join(dir, "spidev0.0") + `"
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Drivers = c.Drivers
	cfg.Uplinks.File.Enabled = true
	a, err := New(Options{Config: &cfg, CreateKey: true, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	condtest.WaitFor(t, 20*time.Second, "the radio's open error in status", func() bool {
		doc, err := a.Status(ctx)
		return err == nil && len(doc.Drivers) == 1 && doc.Drivers[0].LoRa != nil && doc.Drivers[0].LoRa.LastError != ""
	})
	doc, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := doc.Drivers[0]
	if d.Family != "lora" || d.LoRa.Mode != "sx127x" || d.LoRa.Connected == nil || *d.LoRa.Connected ||
		len(d.LoRa.Gateways) != 1 || d.LoRa.Gateways[0].EUI != "B827EBFFFE000001" {
		t.Fatalf("sx127x driver in status: %+v, LoRa %+v", d, d.LoRa)
	}
}

// TestSX127xCountersReachStatus: the radio's counters are its gateway's
// packet counts in status.
func TestSX127xCountersReachStatus(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	l := sx127xLoRa(sx127x.BoardStats{Stats: sx127x.Stats{RxOK: 7, RxBadCRC: 2, RxNoCRC: 1, Spurious: 3, TxOK: 4, TxFailed: 1},
		Open: true, Gateway: "B827EBFFFE000001"}, 1.5, at)
	g := l.Gateways[0]
	want := map[string]uint64{"ok": 7, "crc_error": 2, "no_crc": 1, "tx_sent": 4, "tx_failed": 1}
	for k, v := range want {
		if g.Packets[k] != v {
			t.Errorf("packets[%s] = %d, want %d", k, g.Packets[k], v)
		}
	}
	if l.Mode != "sx127x" || !*l.Connected || l.PacketsPerMinute != 1.5 || !g.LastSeen.Equal(at) || l.Malformed["spurious"] != 3 {
		t.Fatalf("LoRa section %+v", l)
	}
}
