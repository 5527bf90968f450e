package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/config"
)

// demoConfig is the whole pipeline on simulated hardware under dir: a GNSS
// track, LoRa receptions, environment samples and dashcam segments, signed
// and gossiped over libp2p on loopback to an edge-collector child process
// (demo_p2p.go), whose export of what it accepted lands in dir/out.
func demoConfig(dir string) *config.Config {
	cfg := config.Default()
	cfg.Device.DataDir = dir
	cfg.Device.Key = "file:" + filepath.Join(dir, "device.key")
	cfg.Store.Path = filepath.Join(dir, "outbox.db")
	// Its own socket, so the demo never collides with an installed daemon:
	// `edge-agent status --socket DIR/status.sock` watches it.
	cfg.Status = config.Status{Socket: filepath.Join(dir, "status.sock")}
	sim := func(name, kind string, every time.Duration) config.Sim {
		return config.Sim{Name: name, Kind: kind, Interval: config.Duration{Duration: every}}
	}
	cfg.Drivers.Sim = []config.Sim{
		sim("gps0", "gnss", time.Second),
		sim("lora0", "lora", 100*time.Millisecond),
		sim("bme0", "env", time.Second),
		sim("dashcam0", "camera", 2*time.Second),
		sim("car0", "obd", time.Second),
		sim("meter0", "energy", time.Second),
	}
	cfg.Drivers.Sim[3].Dir = filepath.Join(dir, "camera")
	return &cfg
}

func cmdDemo(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "demo", "demo [--duration 15s] [--dir DIR]")
	duration := fs.Duration("duration", 15*time.Second, "how long to run")
	dir := fs.String("dir", "", "keep the key, outbox and delivered records under this `directory` (default: a new temporary one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *duration <= 0 {
		return usagef("--duration must be positive")
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "edge-agent-demo-")
		if err != nil {
			return err
		}
		*dir = d
	}
	if err := os.MkdirAll(*dir, 0o750); err != nil {
		return err
	}
	logPath := filepath.Join(*dir, "agent.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	defer logFile.Close()
	log := slog.New(slog.NewTextHandler(logFile, nil))

	cfg := demoConfig(*dir)
	net, err := startDemoNetwork(ctx, env, *dir, cfg)
	if err != nil {
		return err
	}
	defer net.close()

	a, err := agent.New(agent.Options{Config: cfg, Version: version, Logger: log, CreateKey: true})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "edge-agent demo: device %s, data in %s, log in %s\n", a.Signer().DeviceID(), *dir, logPath)
	fmt.Fprintf(env.stdout, "simulated hardware: GNSS track (1 Hz), LoRa receptions (10/s), BME280 (1 Hz), dashcam segments (every 2 s), a car over OBD-II (1 Hz), an energy meter (1 Hz)\n")
	fmt.Fprint(env.stdout, net.about)

	runCtx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()

	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var runErr error
loop:
	for {
		select {
		case <-tick.C:
			printProgress(env.stdout, time.Since(start), a.Snapshot())
		case runErr = <-done:
			break loop
		}
	}
	if runErr != nil {
		return runErr
	}
	outDir := filepath.Join(*dir, "out")
	if err := os.MkdirAll(outDir, 0o750); err != nil {
		return err
	}
	if err := net.collect(env.stdout, outDir); err != nil {
		return err
	}
	return demoSummary(env.stdout, *dir, outDir)
}

func printProgress(w io.Writer, elapsed time.Duration, s agent.Snapshot) {
	var delivered uint64
	for _, n := range s.Delivered {
		delivered += n
	}
	fmt.Fprintf(w, "[%3ds] observed %6d  signed %6d  stored %6d  delivered %6d  backlog %4d\n",
		int(elapsed.Round(time.Second).Seconds()), s.Observed, s.Signed, s.Stored, delivered, s.Backlog)
}

// demoNetwork is where the demo's records go, and what collect writes to
// outDir at the end.
type demoNetwork struct {
	about   string // printed after the device line: where the records go
	close   func()
	collect func(w io.Writer, outDir string) error
}

// fileDemoNetwork points cfg's file uplink at DIR/out, the spool the summary
// then verifies (read back as the network would read a USB export); about
// and note say why.
func fileDemoNetwork(dir string, cfg *config.Config, about, note string) *demoNetwork {
	cfg.Uplinks.File.Enabled = true
	cfg.Uplinks.File.Dir = filepath.Join(dir, "out")
	return &demoNetwork{
		about: about,
		close: func() {},
		collect: func(w io.Writer, _ string) error {
			fmt.Fprintf(w, "\n%s: the file uplink spooled these (a USB export's format)\n", note)
			return nil
		},
	}
}

// demoSummary verifies what the network side accepted and says so.
func demoSummary(w io.Writer, dir, outDir string) error {
	files, err := filepath.Glob(filepath.Join(outDir, "*.cbor"))
	if err != nil {
		return err
	}
	audit := attest.NewAudit(attest.AuditOptions{})
	kinds := map[string]int{}
	located := 0
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		err = attest.ReadSequence(f, func(raw []byte) error {
			v, rec, _ := audit.Add(raw)
			if v == attest.Accepted {
				kinds[rec.Claims.Kind]++
				if rec.Claims.Loc != nil {
					located++
				}
			}
			return nil
		})
		f.Close()
		if err != nil {
			return fmt.Errorf("demo: read %s: %w", name, err)
		}
	}
	rep := audit.Report()
	total := 0
	names := make([]string, 0, len(kinds))
	for k, n := range kinds {
		names = append(names, k)
		total += n
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\ndelivered %d signed records in %d files under %s:\n", total, len(files), outDir)
	for _, k := range names {
		fmt.Fprintf(w, "  %-14s %6d\n", k, kinds[k])
	}
	fmt.Fprintf(w, "  %d records carry a GNSS location stamp\n\n", located)
	writeReport(w, rep)
	if !rep.OK() {
		fmt.Fprintln(w, "verdict: FAILED")
		return &exitError{code: 1, err: fmt.Errorf("demo: the delivered records do not verify")}
	}
	fmt.Fprintln(w, "verdict: OK — every signature and chain link checks out")
	fmt.Fprintf(w, "\ncheck it yourself:  edge-agent verify %s/*.cbor\n", outDir)
	return nil
}
