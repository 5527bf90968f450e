package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

func cmdBench(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "bench", "bench [--duration 10s] [--dir DIR] [--json]")
	duration := fs.Duration("duration", 10*time.Second, "how long to drive the pipeline")
	dir := fs.String("dir", "", "scratch `directory` on the disk to measure (default: a temporary one, removed after)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	batchMax := fs.Int("batch-max", 0, "records per disk commit (default: the config default, 256); try it against your storage")
	if err := fs.Parse(args); err != nil {
		return err
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
		fmt.Fprintf(env.stdout, "signing and storing synthetic records for %v on %d CPUs (fsync on, scratch in %s)\n",
			*duration, runtime.NumCPU(), scratch)
	}
	res, err := agent.Bench(ctx, agent.BenchOpts{
		Dir: scratch, Duration: *duration, Version: version, BatchMax: *batchMax,
		Progress: func(elapsed time.Duration, records uint64) {
			if !*asJSON {
				fmt.Fprintf(env.stdout, "[%3ds] %8d records  %8.0f/s\n", int(elapsed.Round(time.Second).Seconds()),
					records, float64(records)/elapsed.Seconds())
			}
		},
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(env.stdout).Encode(res)
	}
	fmt.Fprintln(env.stdout, res.String())
	fmt.Fprintln(env.stdout, benchVerdict(res))
	return nil
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
