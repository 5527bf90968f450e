// Package clocktest is a clock.Clock for tests: time stands still until the
// test advances it, and timers fire during Advance, so a test of a backoff
// or a periodic job runs in microseconds and cannot race the wall clock.
// Fake is safe for concurrent use; timer functions (AfterFunc) run on the
// goroutine that calls Advance, without Fake's lock held.
package clocktest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/clock"
)

// Fake is a manual clock. Create it with NewFake.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*timer      // pending, in no order
	changed chan struct{} // closed and replaced when a timer is added
}

var _ clock.Clock = (*Fake)(nil)

// NewFake returns a clock that reads start until advanced.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, changed: make(chan struct{})}
}

// Now is the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer is a timer that fires when the clock is advanced d past now.
func (f *Fake) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := &timer{f: f, c: make(chan time.Time, 1)}
	t.start(d)
	return t.c, t.stop
}

// AfterFunc runs fn in the Advance that reaches now+d; the func it returns
// stops that. (clock.Clock has no AfterFunc yet; see there.)
func (f *Fake) AfterFunc(d time.Duration, fn func()) func() bool {
	t := &timer{f: f, fn: fn}
	t.start(d)
	return t.stop
}

// Advance moves the clock forward by d, firing every timer due on the way in
// order of its deadline, with Now reading that deadline while it fires.
// The clock never runs backwards, even when Advances overlap.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	end := f.now.Add(d)
	f.mu.Unlock()
	for {
		f.mu.Lock()
		i := f.earliest()
		if i < 0 || f.timers[i].at.After(end) {
			f.set(end)
			f.mu.Unlock()
			return
		}
		t := f.timers[i]
		f.timers = slices.Delete(f.timers, i, i+1)
		f.set(t.at)
		at := t.at
		f.mu.Unlock()
		if t.fn != nil {
			t.fn()
		} else {
			select {
			case t.c <- at:
			default: // like time.Timer: an unread tick is not queued twice
			}
		}
	}
}

// set moves now to t, never back: a timer function or another goroutine may
// have advanced the clock further meanwhile. f.mu is held.
func (f *Fake) set(t time.Time) {
	if t.After(f.now) {
		f.now = t
	}
}

// Pending is the number of timers not yet fired or stopped.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// Next is how far the earliest pending timer is from now; ok is false when
// none is pending.
func (f *Fake) Next() (d time.Duration, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.earliest()
	if i < 0 {
		return 0, false
	}
	return f.timers[i].at.Sub(f.now), true
}

// WaitPending blocks until at least n timers are pending (the component
// under test has reached its wait), failing tb after a minute of wall time.
func (f *Fake) WaitPending(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		got, changed := len(f.timers), f.changed
		f.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			tb.Fatalf("clocktest: waited a minute for %d pending timers, have %d", n, got)
		}
	}
}

// AdvanceNext waits until a timer is pending, advances the clock to it and
// returns how far that was: the delay the component chose.
func (f *Fake) AdvanceNext(tb testing.TB) time.Duration {
	tb.Helper()
	f.WaitPending(tb, 1)
	d, _ := f.Next()
	f.Advance(d)
	return d
}

// Waits ends the next n waits of a component as AdvanceNext does and
// returns how long each was: the component's backoff, in order.
func (f *Fake) Waits(tb testing.TB, n int) []time.Duration {
	tb.Helper()
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = f.AdvanceNext(tb)
	}
	return ds
}

// earliest is the index of the first timer due, -1 if none. f.mu is held.
func (f *Fake) earliest() int {
	best := -1
	for i, t := range f.timers {
		if best < 0 || t.at.Before(f.timers[best].at) {
			best = i
		}
	}
	return best
}

// timer is one Fake timer; fn is set for AfterFunc, c otherwise.
type timer struct {
	f  *Fake
	at time.Time
	c  chan time.Time
	fn func()
}

// stop also drops an unread tick, as time.Timer's Stop does since Go 1.23.
func (t *timer) stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.drain()
	return t.remove()
}

func (t *timer) start(d time.Duration) {
	f := t.f
	f.mu.Lock()
	defer f.mu.Unlock()
	t.at = f.now.Add(d)
	f.timers = append(f.timers, t)
	close(f.changed)
	f.changed = make(chan struct{})
}

func (t *timer) drain() {
	if t.c != nil {
		select {
		case <-t.c:
		default:
		}
	}
}

// remove takes t off the pending list and reports whether it was there.
// f.mu is held.
func (t *timer) remove() bool {
	i := slices.Index(t.f.timers, t)
	if i < 0 {
		return false
	}
	t.f.timers = slices.Delete(t.f.timers, i, i+1)
	return true
}
