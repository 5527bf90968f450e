package agent

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/clock/clocktest"
	"github.com/edge-agent/edge-agent/status"
)

// TestSuperviseBacksOffOnTheClock: a component that keeps failing is
// restarted after 1 s, 2 s, 4 s … up to 5 min, and one that ran for more
// than a minute before failing starts again from 1 s. The fake clock makes
// the ten minutes of waits take no wall time.
func TestSuperviseBacksOffOnTheClock(t *testing.T) {
	clk := clocktest.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	a := &Agent{o: Options{Clock: clk}, log: slog.New(slog.DiscardHandler), failures: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	longRun := 12
	fn := func(context.Context) error {
		n++
		if n == longRun {
			clk.Advance(2 * time.Minute) // this run lasted two minutes
		}
		return errors.New("broken")
	}
	done := make(chan struct{})
	var states []string
	go func() {
		defer close(done)
		a.supervise(ctx, "driver x", fn, func(s driverState) { states = append(states, s.state) })
	}()
	want := []time.Duration{1e9, 2e9, 4e9, 8e9, 16e9, 32e9, 64e9, 128e9, 256e9, 300e9, 300e9, 1e9, 2e9}
	if got := clk.Waits(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("restarts waited %v, want %v", got, want)
	}
	clk.WaitPending(t, 1)
	cancel()
	<-done
	if a.failures["driver x"] != "broken" {
		t.Errorf("failures = %v, want driver x: broken", a.failures)
	}
	if len(states) < 2 || states[0] != status.StateFailed || states[1] != status.StateLoaded {
		t.Errorf("states %v, want failed then loaded (restarted) in turn", states)
	}
}
