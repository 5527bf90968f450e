// Package backoff spaces out retries: the wait starts at a minimum and
// doubles after each failure up to a maximum, and a success starts it over.
// It waits on a clock.Clock, so tests advance a clocktest.Fake instead of
// sleeping. A Backoff belongs to one retry loop and is not safe for
// concurrent use.
package backoff

import (
	"context"
	"time"

	"github.com/edge-agent/edge-agent/clock"
)

// Backoff is one retry loop's wait. Make it with New.
type Backoff struct {
	min, max time.Duration
	next     time.Duration // the wait Next returns; 0 before the first
	clock    clock.Clock
	jitter   func(n int64) int64
}

// New is a backoff from min to max (max below min is min) waiting on c; nil
// c is the wall clock.
func New(min, max time.Duration, c clock.Clock) Backoff {
	return Backoff{min: min, max: max, clock: clock.Or(c)}
}

// WithJitter draws each wait uniformly from the upper half of the doubled
// one, using intN (a uniform integer in [0, n), such as rand.Int64N). Use it
// where many devices lose the same server at once and would otherwise come
// back in lockstep; a local retry (a disk, a serial port) has no herd.
func (b Backoff) WithJitter(intN func(n int64) int64) Backoff {
	b.jitter = intN
	return b
}

// Next is the wait before the next attempt after a failure: min after New
// or Reset, then double the last, capped at max.
func (b *Backoff) Next() time.Duration {
	b.next = min(max(2*b.next, b.min), max(b.max, b.min)) // 0 after Reset: min
	d := b.next
	if b.jitter != nil {
		d -= time.Duration(b.jitter(int64(d/2) + 1)) // from d/2 to d
	}
	return d
}

// Reset starts over at min: the last attempt succeeded.
func (b *Backoff) Reset() { b.next = 0 }

// Wait sleeps d on the backoff's clock (d is usually what Next returned, so
// the caller can log it first). It returns ctx.Err() if ctx ends first.
func (b *Backoff) Wait(ctx context.Context, d time.Duration) error {
	return clock.Sleep(ctx, b.clock, d)
}

// Clock is the clock the backoff waits on.
func (b *Backoff) Clock() clock.Clock { return b.clock }
