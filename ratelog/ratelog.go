// Package ratelog holds back log lines that repeat: a Limiter lets a burst
// of lines through and then one per interval, and counts the rest, so a
// fault that repeats a hundred times a second (a poisoned observation, a
// full disk, a hostile sender, an unplugged sensor) is one line every few
// seconds that says how many it stands for, and does not fill the SD card.
//
// It is the one rate-limited logger of the tree; callers keep their own
// slog.Logger and ask Allow before each noisy line:
//
//	if ok, n := lim.Allow(now); ok {
//		log.Warn("reading failed", "err", err, "suppressed", n)
//	}
//
// A Limiter is safe for concurrent use.
package ratelog

import (
	"sync"
	"time"
)

// Limiter is a token bucket of burst lines that refills one line per
// interval, kept as the time it is next empty (the generic cell rate
// algorithm), so it is exact in time.Duration arithmetic.
type Limiter struct {
	every time.Duration
	slack time.Duration // (burst-1)*every: how far ahead of now tat may run

	mu         sync.Mutex
	tat        time.Time // when the bucket would be full again
	suppressed int       // lines held back since the last allowed one
}

// New returns a Limiter that lets burst lines through at once and then one
// per every. A burst below 1 counts as 1; every <= 0 lets everything through.
func New(every time.Duration, burst int) *Limiter {
	return &Limiter{every: every, slack: time.Duration(max(burst, 1)-1) * every}
}

// Allow reports whether to log now, and how many lines were held back since
// the last one that was (so that line can say so).
func (l *Limiter) Allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tat.Before(now) {
		l.tat = now
	}
	if l.tat.Sub(now) > l.slack {
		l.suppressed++
		return false, 0
	}
	l.tat = l.tat.Add(max(l.every, 0))
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
