package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/uplink/mqtt/mqtttest"
)

// TestDaemonDeliversOverMQTT runs the real daemon against a real mosquitto:
// a fixed number of records, a SIGKILL halfway, a restart. The subscriber
// must end up with every record of one clean chain; repeats are allowed.
func TestDaemonDeliversOverMQTT(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Config{})
	rec := mqtttest.Record(t, broker.URL(), "edge-agent/+/att/#")
	// A consumer that wants one kind subscribes to its topic alone.
	boots := mqtttest.Record(t, broker.URL(), "edge-agent/+/att/agent.boot")
	dir := t.TempDir()
	const n = 3000
	cfgPath := writeConfig(t, dir, `
[[drivers.sim]]
name = "load"
kind = "counter"
interval = "500us"
count = 3000

[uplinks.mqtt]
enabled = true
servers = ["`+broker.URL()+`"]
`)
	cmd := startAgent(t, cfgPath, dir)
	rec.WaitFor(t, 30*time.Second, "the first records", func(m []mqtttest.Message) bool { return len(m) > 200 })
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	cmd = startAgent(t, cfgPath, dir)
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	// n counter records plus an agent.boot per start; the second run's
	// counter starts from 0 again, so at least n more after the kill.
	rec.WaitFor(t, 60*time.Second, "every record", func(msgs []mqtttest.Message) bool {
		audit := attest.NewAudit()
		counters := 0
		for _, m := range msgs {
			if v, r, _ := audit.Add(m.Payload); v == attest.Accepted && r.Claims.Kind == "sim.counter" {
				counters++
			}
		}
		return counters >= n+1 && audit.Report().OK()
	})
	audit := attest.NewAudit()
	for _, m := range rec.Messages() {
		_, r, _ := audit.Add(m.Payload)
		if r == nil || !strings.HasSuffix(m.Topic, "/att/"+r.Claims.Kind) {
			t.Fatalf("record on topic %q, want .../att/<its kind>", m.Topic)
		}
	}
	for _, m := range boots.Messages() {
		if r, err := attest.Decode(m.Payload); err != nil || r.Claims.Kind != "agent.boot" {
			t.Fatalf("the agent.boot subscriber got %v %v", r, err)
		}
	}
	if n := len(boots.Messages()); n < 2 {
		t.Errorf("the agent.boot subscriber got %d records, want one per start (2)", n)
	}
	rep := audit.Report()
	if !rep.OK() || len(rep.Devices) != 1 || rep.Devices[0].Chains[0].Boots != 2 {
		t.Fatalf("what the broker delivered does not verify as one chain with two boots: %+v", rep)
	}
	c := rep.Devices[0].Chains[0]
	topic := "edge-agent/" + rep.Devices[0].DeviceID + "/att/agent.boot"
	if got := rec.Messages()[0].Topic; got != topic {
		t.Fatalf("topic %q, want %q", got, topic)
	}
	t.Logf("delivered seq %d-%d, %d duplicates after the SIGKILL", c.FirstSeq, c.LastSeq, c.Duplicates)
}
