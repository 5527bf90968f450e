package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/status"
)

// nobody is the unprivileged account the race test runs the daemon as; the
// packaged unit runs it as edge-agent, which packaging creates, and is no
// more privileged.
const nobody = 65534

// TestProbeDoesNotRaceTheDriverUnprivileged runs the daemon as an
// unprivileged user (serial ports opened exclusively, as the unit runs it)
// on a pty receiver that starts talking right away. The start-up probe must
// not take the port from the driver: no reconnect, every epoch signed, and
// the status says loaded.
func TestProbeDoesNotRaceTheDriverUnprivileged(t *testing.T) {
	if dir := os.Getenv("EDGE_AGENT_PROBE_CHILD"); dir != "" {
		probeChild(dir, os.Getenv("EDGE_AGENT_PROBE_TTY"))
		return
	}
	if os.Geteuid() != 0 {
		t.Fatal("this test starts the daemon as user nobody and must run as root (as CI does)")
	}
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	if err := os.Chown(slave.Name(), nobody, nobody); err != nil {
		t.Fatal(err)
	}
	// A directory nobody may enter, holding a copy of this test binary.
	dir, err := os.MkdirTemp("", "edge-agent-probe-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "agent.test")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, data} {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-test.run=^TestProbeDoesNotRaceTheDriverUnprivileged$")
	cmd.Env = append(os.Environ(), "EDGE_AGENT_PROBE_CHILD="+data, "EDGE_AGENT_PROBE_TTY="+slave.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("child did not start: %q\n%s", lines.Text(), stderr.String())
	}
	// The receiver talks from the first moment, at 1 Hz.
	start := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	const epochs = probeEpochs
	for i := 0; i < epochs; i++ {
		at := start.Add(time.Duration(i) * time.Second)
		hms, dmy := at.Format("150405.00"), at.Format("020106")
		burst := nmeaSentence("GPRMC,"+hms+",A,4807.038247,N,01131.000123,E,0.0,,"+dmy+",,,A") +
			nmeaSentence("GPGGA,"+hms+",4807.038247,N,01131.000123,E,1,08,0.9,545.4,M,46.9,M,,") +
			nmeaSentence("GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,0.9,2.1")
		if i == 0 {
			time.Sleep(100 * time.Millisecond)
		} else {
			time.Sleep(time.Until(at))
		}
		if _, err := master.Write([]byte(burst)); err != nil {
			t.Fatal(err)
		}
	}
	var res probeChildResult
	if !lines.Scan() {
		t.Fatalf("no result from the child:\n%s", stderr.String())
	}
	if err := json.Unmarshal(lines.Bytes(), &res); err != nil {
		t.Fatalf("child result %q: %v", lines.Text(), err)
	}
	cmd.Wait()
	logs := stderr.String()
	if strings.Contains(logs, "reconnecting") || strings.Contains(strings.ToLower(logs), "busy") {
		t.Errorf("the driver lost its port to the probe:\n%s", logs)
	}
	if res.Fixes != epochs {
		t.Errorf("%d gnss.fix records for %d epochs (the probe swallowed some)\n%s", res.Fixes, epochs, logs)
	}
	if res.State != status.StateLoaded {
		t.Errorf("driver state %q (%s), want loaded", res.State, res.Reason)
	}
}

// probeEpochs is how many epochs the parent writes and the child waits for.
const probeEpochs = 4

type probeChildResult struct {
	Fixes  uint64 `json:"fixes"`
	State  string `json:"state"`
	Reason string `json:"reason"`
}

// probeChild is the daemon side of the race test, running as nobody.
func probeChild(dir, tty string) {
	fail := func(err error) { fmt.Fprintln(os.Stderr, "child:", err); os.Exit(2) }
	cfg := configIn(dir)
	cfg.Drivers.GNSS = []config.GNSS{{Name: "gps0", Source: "serial", Device: tty, Baud: 9600, Interval: config.D(0)}}
	if err := cfg.Validate(); err != nil {
		fail(err)
	}
	lg := slog.New(slog.NewTextHandler(os.Stderr, nil))
	a, err := New(Options{Config: &cfg, CreateKey: true, Version: "test", Logger: lg})
	if err != nil {
		fail(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	fmt.Println("ready")
	// Wait for the parent's epochs as fixes; a probe that swallowed some
	// runs into the deadline and reports fewer.
	var res probeChildResult
	for deadline := time.Now().Add(time.Minute); res.Fixes < probeEpochs && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		doc, err := a.Status(ctx)
		if err != nil {
			fail(err)
		}
		for _, d := range doc.Drivers {
			if d.Name == "gps0" {
				res.Fixes, res.State, res.Reason = d.Observations["gnss.fix"], d.State, d.Reason
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		fail(err)
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	os.Exit(0)
}

// TestStatusFollowsTheDriverNotTheProbe: a receiver that is silent for the
// probe's window (warming up) and then talks, without a fix yet. The
// probe's "sent nothing" verdict must give way to what the driver decodes.
func TestStatusFollowsTheDriverNotTheProbe(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	dir := t.TempDir()
	cfg := configIn(dir)
	cfg.Drivers.GNSS = []config.GNSS{{Name: "gps0", Source: "serial", Device: slave.Name(), Baud: 9600, Interval: config.D(0)}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Config: &cfg, CreateKey: true, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	state := func() (string, string) {
		doc, err := a.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range doc.Drivers {
			if d.Name == "gps0" {
				return d.State, d.Reason
			}
		}
		return "", ""
	}
	condtest.WaitFor(t, time.Minute, "the probe's verdict on a silent receiver", func() bool {
		_, reason := state()
		return strings.Contains(reason, "sent nothing")
	})
	// The receiver starts talking at 1 Hz, still without a fix.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		hms := time.Now().UTC().Format("150405.00")
		master.Write([]byte(nmeaSentence("GPRMC,"+hms+",V,,,,,,,011226,,,N") + nmeaSentence("GPGGA,"+hms+",,,,,0,00,99.99,,,,,,")))
		st, reason := state()
		if st == status.StateLoaded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("driver state %q (%s) a minute after the receiver began to talk, want loaded", st, reason)
		}
	}
	// Refused input is in the status document, by reason.
	master.Write([]byte("$GPGGA,120000.00,,,,,0,00,99.99,,,,,,\r\n" + nmeaSentence("GPGGA,120001.00,,,,,0,00,NaN,,,,,,")))
	var g *status.GNSS
	condtest.WaitFor(t, 20*time.Second, "the refused input in the status document", func() bool {
		doc, err := a.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		g = doc.Drivers[0].GNSS
		return g != nil && g.Rejected["no_checksum"] >= 1 && g.Rejected["invalid"] >= 1
	})
	if g.Sentences == 0 || g.Rejected["no_checksum"] != 1 || g.Rejected["invalid"] != 1 || g.LastReject == "" {
		t.Errorf("status does not show the refused input: %+v", g)
	}
}
