package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/config"
)

func nmea(body string) string {
	var sum byte
	for i := 0; i < len(body); i++ {
		sum ^= body[i]
	}
	return fmt.Sprintf("$%s*%02X\r\n", body, sum)
}

// TestDoctorGNSSWithoutFix: a running daemon whose receiver (a real pty)
// talks but never gets a fix. After 45 minutes of that — the daemon's clock
// is moved on, nothing else is faked — doctor must fail the GNSS line and
// say to check the antenna.
func TestDoctorGNSSWithoutFix(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, fmt.Sprintf("[[drivers.gnss]]\nname = \"gps0\"\ndevice = %q\n", slave.Name()))
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	a, err := agent.New(agent.Options{Config: cfg, CreateKey: true, Version: "test", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// A receiver indoors: sentences every epoch, status V, quality 0.
	for i := 0; i < 10; i++ {
		hms := time.Now().UTC().Format("150405") + ".00"
		master.Write([]byte(nmea("GPRMC,"+hms+",V,,,,,,,211126,,,N") + nmea("GPGGA,"+hms+",,,,,0,00,99.99,,,,,,") +
			nmea("GPGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99")))
		time.Sleep(150 * time.Millisecond)
	}
	skew.Store(int64(45 * time.Minute))

	code, out, stderr := cli(t, "doctor", "--json", "-c", cfgPath)
	var report struct {
		Daemon  string `json:"daemon"`
		Verdict string `json:"verdict"`
		Results []struct {
			Name, Level, Message, Next string
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("doctor --json: %v\n%s\n%s", err, out, stderr)
	}
	if code != 2 || report.Daemon != "running" {
		t.Fatalf("exit %d, daemon %q; want 2 (fail) from a running daemon\n%s", code, report.Daemon, out)
	}
	for _, r := range report.Results {
		if strings.Contains(r.Name, "gps0") {
			if r.Level != "fail" || !strings.Contains(r.Message, "no fix") || !strings.Contains(r.Next, "antenna") {
				t.Fatalf("gps0 line: %+v; want a fail about no fix, pointing at the antenna", r)
			}
			return
		}
	}
	t.Fatalf("no gps0 line in the report:\n%s", out)
}
