// Package clock is the time source components take, so that tests can
// replace the wall clock (clock/clocktest.Fake) and advance it instead of
// sleeping. Real is the wall clock. A Clock is safe for concurrent use.
package clock

import (
	"context"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	// NewTimer is time.NewTimer as its channel and its Stop. (Funcs, not a
	// Timer interface: a call through an interface method keeps every
	// linked type's method of that name, a cost in the device binary.)
	NewTimer(d time.Duration) (c <-chan time.Time, stop func() bool)
	// No AfterFunc yet: no component needs one (clocktest.Fake has it for
	// the first that does), and each method here is linked into the device
	// binary whether called or not.
}

// Real is the wall clock.
var Real Clock = &wall{}

// wall has pointer methods only, so the binary carries one method set.
type wall struct{}

func (*wall) Now() time.Time { return time.Now() }

func (*wall) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// Or is c, or Real when c is nil: options structs leave Clock unset.
func Or(c Clock) Clock {
	if c == nil {
		return Real
	}
	return c
}

// Sleep waits d on c. It returns ctx.Err() if ctx ends first, else nil.
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	ch, stop := c.NewTimer(d)
	select {
	case <-ctx.Done():
		stop()
		return ctx.Err()
	case <-ch:
		return nil
	}
}
