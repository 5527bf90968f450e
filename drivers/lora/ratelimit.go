package lora

import (
	"sync"
	"time"
)

// logLimiter is a token bucket for noisy log lines: a misconfigured or
// hostile sender must not fill the SD card with one line per datagram.
// Safe for concurrent use: the reader, the worker and the upstream links
// share the driver's limiters.
type logLimiter struct {
	mu         sync.Mutex
	rate       float64 // tokens per second
	burst      float64
	tokens     float64
	last       time.Time
	suppressed uint64 // lines refused since the last allowed one
}

func newLogLimiter(perSecond float64, burst int) *logLimiter {
	return &logLimiter{rate: perSecond, burst: float64(burst), tokens: float64(burst)}
}

// allow reports whether a line may be logged now, and how many were
// suppressed since the previous allowed line (so that line can say so).
func (l *logLimiter) allow(now time.Time) (ok bool, suppressed uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	s := l.suppressed
	l.suppressed = 0
	return true, s
}
