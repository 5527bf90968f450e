package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/doctor"
)

func cmdBench(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "bench", "bench [--duration 10s] [--rate N] [--dir DIR] [--key URI] [--json]")
	duration := fs.Duration("duration", 10*time.Second, "how long to drive the pipeline")
	dir := fs.String("dir", "", "scratch `directory` on the disk to measure (default: a temporary one, removed after)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	batchMax := fs.Int("batch-max", 0, "records per disk commit (default: the config default, 256); try it against your storage")
	rate := fs.Float64("rate", 0, "records per `second` from a simulated gateway, acked at once, as a device runs (default: full speed)")
	commitInterval := fs.Duration("commit-interval", -1, "durability window (default: the config default, 2s); 0s = commit every batch at once")
	key := fs.String("key", "", "also bench this device key `URI` (tpm:…, ecc608:…) after a file: key, in the same run, and compare")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate < 0 || *rate > 100000 {
		return usagef("bench: --rate %v: want 0 (full speed) up to 100000 records a second", *rate)
	}
	var interval *time.Duration
	if *commitInterval >= 0 {
		interval = commitInterval
	}
	scratch := *dir
	if scratch == "" {
		d, err := os.MkdirTemp("", "edge-agent-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		scratch = d
	}
	if !*asJSON {
		what := "at full speed"
		if *rate > 0 {
			what = fmt.Sprintf("at %v records/s, acked at once", *rate)
		}
		fmt.Fprintf(env.stdout, "signing and storing synthetic records %s for %v on %d CPUs (fsync on, scratch in %s)\n",
			what, *duration, runtime.NumCPU(), scratch)
	}
	run := func(sub, key string) (agent.BenchResult, error) {
		d := filepath.Join(scratch, sub)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return agent.BenchResult{}, err
		}
		return agent.Bench(ctx, agent.BenchOpts{
			Dir: d, Duration: *duration, Version: version, BatchMax: *batchMax, Key: key,
			Rate: *rate, CommitInterval: interval,
			Progress: func(elapsed time.Duration, records uint64) {
				if !*asJSON {
					fmt.Fprintf(env.stdout, "[%3ds] %8d records  %8.0f/s\n", int(elapsed.Round(time.Second).Seconds()),
						records, float64(records)/elapsed.Seconds())
				}
			},
		})
	}
	res, err := run("file", "")
	if err != nil {
		return err
	}
	if *key == "" {
		if *asJSON {
			return json.NewEncoder(env.stdout).Encode(res)
		}
		fmt.Fprintln(env.stdout, res.String())
		if *rate > 0 {
			fmt.Fprintln(env.stdout, wearVerdict(res))
		} else {
			fmt.Fprintln(env.stdout, benchVerdict(res))
		}
		return nil
	}
	if !*asJSON {
		fmt.Fprintln(env.stdout, "file: "+res.String())
		fmt.Fprintf(env.stdout, "now the same with %s\n", *key)
	}
	hw, err := run("key", *key)
	if err != nil {
		return err
	}
	ratio := hw.PerSecond / res.PerSecond
	if *asJSON {
		return json.NewEncoder(env.stdout).Encode(map[string]any{"file": res, "key": hw, "ratio": ratio})
	}
	fmt.Fprintln(env.stdout, hw.KeyBackend+": "+hw.String())
	fmt.Fprintf(env.stdout, "%s key: %.1f%% of the file: key's records/s, %+.0f bytes/record\n", hw.KeyBackend, 100*ratio, hw.BytesPerRecord-res.BytesPerRecord)
	fmt.Fprintln(env.stdout, benchVerdict(hw))
	return nil
}

// wearVerdict says what a rate bench's write volume means for an SD card.
func wearVerdict(r agent.BenchResult) string {
	perSec := r.DiskPerRecord * r.PerSecond
	return fmt.Sprintf("verdict: the outbox writes %.1f KB/s (%.2f GB a day); %s", perSec/1e3, perSec*86400/1e9, doctor.WearText(perSec))
}

// benchVerdict says in one line what the numbers mean for this device.
func benchVerdict(r agent.BenchResult) string {
	switch {
	case r.PerSecond >= 5000 && r.P99 <= 100*time.Millisecond:
		return fmt.Sprintf("verdict: plenty — this device can attest %.0f observations a second, far more than a hotspot hears", r.PerSecond)
	case r.PerSecond >= 500:
		return "verdict: enough for a hotspot or a sensor box; a busy gateway may queue at peaks"
	default:
		return "verdict: slow — check the storage (fsync latency of the SD card) and CPU throttling"
	}
}
