package agent

import (
	"context"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
)

func TestDriverCounts(t *testing.T) {
	now := time.Unix(1_800_000_000, 0) // a minute boundary
	c := newDriverCounts()
	emit := c.wrap(func(context.Context, drivers.Observation) error { return nil }, func() time.Time { return now })
	for m := 0; m < 6; m++ {
		for i := 0; i < 10*(m+1); i++ {
			emit(context.Background(), drivers.Observation{Kind: drivers.KindLoRaRX})
		}
		emit(context.Background(), drivers.Observation{Kind: drivers.KindLoRaStat})
		now = now.Add(time.Minute)
	}
	// Minutes 2..5 (30+40+50+60 lora.rx) are the last four complete ones.
	if got := c.perMinute(drivers.KindLoRaRX, now); got != 45 {
		t.Fatalf("lora.rx per minute = %v, want 45", got)
	}
	if got := c.perMinute("", now); got != 46 {
		t.Fatalf("all kinds per minute = %v, want 46", got)
	}
	counts, last := c.snapshot()
	if counts[drivers.KindLoRaRX] != 210 || counts[drivers.KindLoRaStat] != 6 || !last.Equal(now.Add(-time.Minute)) {
		t.Fatalf("snapshot %v %v", counts, last)
	}
	if got := c.perMinute(drivers.KindLoRaRX, now.Add(10*time.Minute)); got != 0 {
		t.Fatalf("rate after 10 quiet minutes = %v, want 0", got)
	}
}

// TestDriverCountsFirstMinute: a driver 20 s into its first minute has a
// rate, not 0.0 until a full minute has passed.
func TestDriverCountsFirstMinute(t *testing.T) {
	start := time.Unix(1_800_000_030, 0) // half way into a minute
	now := start
	c := newDriverCounts()
	emit := c.wrap(func(context.Context, drivers.Observation) error { return nil }, func() time.Time { return now })
	now = start.Add(20 * time.Second)
	for range 10 {
		emit(context.Background(), drivers.Observation{Kind: drivers.KindLoRaRX})
	}
	if got := c.perMinute("", now); got != 30 {
		t.Fatalf("10 observations in the first 20 s = %v per minute, want 30", got)
	}
	now = start.Add(90 * time.Second) // the next minute, nothing new
	if got := c.perMinute("", now); got != 10/1.5 {
		t.Fatalf("after 90 s = %v per minute, want %v", got, 10/1.5)
	}
}
