package backoff_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/backoff"
	"github.com/edge-agent/edge-agent/clock/clocktest"
)

// TestNext holds the delays every retry loop had before the package:
// doubling from min, capped at max, back to min after Reset.
func TestNext(t *testing.T) {
	tests := []struct {
		name     string
		min, max time.Duration
		want     []time.Duration
	}{
		{"supervise", time.Second, 5 * time.Minute, []time.Duration{1e9, 2e9, 4e9, 8e9, 16e9, 32e9, 64e9, 128e9, 256e9, 300e9, 300e9}},
		{"env", time.Second, 10 * time.Second, []time.Duration{1e9, 2e9, 4e9, 8e9, 10e9, 10e9}},
		{"gnss", 250 * time.Millisecond, 30 * time.Second, []time.Duration{250e6, 500e6, 1e9, 2e9, 4e9, 8e9, 16e9, 30e9, 30e9}},
		{"max below min", time.Second, time.Millisecond, []time.Duration{1e9, 1e9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := backoff.New(tt.min, tt.max, nil)
			for round := range 2 {
				for i, want := range tt.want {
					if got := b.Next(); got != want {
						t.Fatalf("round %d: Next #%d = %v, want %v", round, i+1, got, want)
					}
				}
				b.Reset()
			}
		})
	}
}

// TestJitter: a jittered wait lies in the upper half of the doubled one and
// uses the whole of that half.
func TestJitter(t *testing.T) {
	for _, tt := range []struct {
		name string
		intN func(int64) int64
		want time.Duration
	}{
		{"intN gives 0", func(int64) int64 { return 0 }, 4 * time.Second},
		{"intN gives n-1", func(n int64) int64 { return n - 1 }, 2 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := backoff.New(time.Second, time.Minute, nil).WithJitter(tt.intN)
			b.Next()
			b.Next()
			if got := b.Next(); got != tt.want {
				t.Errorf("third Next (4s before jitter) = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWaitUsesTheClock(t *testing.T) {
	clk := clocktest.NewFake(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	b := backoff.New(time.Hour, 2*time.Hour, clk)
	done := make(chan error, 1)
	go func() { done <- b.Wait(context.Background(), b.Next()) }()
	if d := clk.AdvanceNext(t); d != time.Hour {
		t.Fatalf("waited %v on the clock, want 1h", d)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- b.Wait(ctx, b.Next()) }()
	clk.WaitPending(t, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after cancel = %v, want context.Canceled", err)
	}
	if n := clk.Pending(); n != 0 {
		t.Errorf("%d timers left pending after a cancelled Wait", n)
	}
}
