package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/collect"
	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/uplink/mqtt/mqtttest"
)

// TestCollectorReceivesOverMQTT: the network side subscribed to a real
// mosquitto receives what a real daemon publishes, and its export verifies
// as the device's whole chain.
func TestCollectorReceivesOverMQTT(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Config{})
	dir := t.TempDir()

	cc := collect.DefaultConfig()
	cc.DataDir = filepath.Join(dir, "collector")
	cc.Listen = nil
	cc.StatusInterval.Duration = 0
	cc.MQTT = collect.MQTT{Enabled: true, Servers: []string{broker.URL()}, ClientID: "collector-test", TopicPrefix: "edge-agent"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	col, err := collect.StartInProcess(ctx, collect.Options{Config: &cc, CreateKey: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()

	const n = 500
	cfgPath := writeConfig(t, dir, `
[[drivers.sim]]
name = "load"
kind = "counter"
interval = "1ms"
count = 500

[uplinks.mqtt]
enabled = true
servers = ["`+broker.URL()+`"]
`)
	cmd := startAgent(t, cfgPath, dir)
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	condtest.WaitFor(t, 60*time.Second, "the collector to accept the counter records and the boot record", func() bool { return col.Stats().Accepted >= n+1 })
	col.Close()
	out := filepath.Join(dir, "collected.cbor")
	if _, err := col.ExportFile(out); err != nil {
		t.Fatal(err)
	}
	code, vout, _ := cli(t, "verify", out)
	if code != 0 {
		t.Fatalf("the collector's export does not verify:\n%s", vout)
	}
}
