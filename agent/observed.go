package agent

import (
	"context"
	"sync"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
)

// rateWindow is how far back per-minute rates look.
const rateWindow = 5

// driverCounts is what one driver has emitted, counted by the agent around
// its Emit so that no driver has to keep status for the daemon.
type driverCounts struct {
	mu      sync.Mutex
	byKind  map[string]uint64
	last    time.Time
	since   time.Time                // when counting started: the rate's first minute is short
	minutes [rateWindow]minuteBucket // ring, by minute since the epoch
}

type minuteBucket struct {
	minute int64
	byKind map[string]uint64
}

func newDriverCounts() *driverCounts { return &driverCounts{byKind: map[string]uint64{}} }

// wrap returns an Emit that counts what passes through to emit.
func (c *driverCounts) wrap(emit drivers.Emit, now func() time.Time) drivers.Emit {
	c.mu.Lock()
	if c.since.IsZero() {
		c.since = now()
	}
	c.mu.Unlock()
	return func(ctx context.Context, o drivers.Observation) error {
		if err := emit(ctx, o); err != nil {
			return err
		}
		t := now()
		m := t.Unix() / 60
		c.mu.Lock()
		c.byKind[o.Kind]++
		c.last = t
		b := &c.minutes[m%rateWindow]
		if b.minute != m || b.byKind == nil {
			*b = minuteBucket{minute: m, byKind: map[string]uint64{}}
		}
		b.byKind[o.Kind]++
		c.mu.Unlock()
		return nil
	}
}

// snapshot returns the counts by kind and the time of the last observation.
func (c *driverCounts) snapshot() (map[string]uint64, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.byKind))
	for k, v := range c.byKind {
		out[k] = v
	}
	return out, c.last
}

// perMinute is the rate of kind ("" = all kinds) over the window: the
// minutes kept, the current partial one included, divided by the time they
// cover, so a driver that started 20 s ago shows its rate, not 0.
func (c *driverCounts) perMinute(kind string, now time.Time) float64 {
	cur := now.Unix() / 60
	c.mu.Lock()
	defer c.mu.Unlock()
	from := time.Unix((cur-(rateWindow-1))*60, 0)
	if c.since.After(from) {
		from = c.since
	}
	span := now.Sub(from)
	if span < time.Second {
		span = time.Second
	}
	var n uint64
	for _, b := range c.minutes {
		if b.minute > cur || b.minute < cur-(rateWindow-1) {
			continue
		}
		if kind == "" {
			for _, v := range b.byKind {
				n += v
			}
		} else {
			n += b.byKind[kind]
		}
	}
	return float64(n) / span.Minutes()
}
