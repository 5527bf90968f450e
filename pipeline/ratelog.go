package pipeline

import (
	"sync"
	"time"
)

// logLimit lets one line through per interval and counts the rest, so a
// fault that repeats a hundred times a second (a poisoned observation, a
// full disk) is one line every few seconds that says how many it stands for.
type logLimit struct {
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether to log now, and how many lines were held back
// since the last one that was.
func (l *logLimit) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return false, 0
	}
	l.last, suppressed, l.suppressed = now, l.suppressed, 0
	return true, suppressed
}
