package agent

import (
	"sync"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/drivers"
)

// locationStamp holds the latest GNSS position for the "loc" claim. GNSS
// drivers feed it every epoch through Update; the pipeline reads it for each
// record. Freshness is judged on the device's monotonic clock at the time the
// fix arrived, not on the fix's own timestamp: a Pi has no RTC, and its wall
// clock may be far off until NTP or GNSS sets it.
type locationStamp struct {
	maxAge time.Duration
	now    func() time.Time

	mu       sync.Mutex
	loc      *attest.Location
	received time.Time
}

func newLocationStamp(maxAge time.Duration, now func() time.Time) *locationStamp {
	return &locationStamp{maxAge: maxAge, now: now}
}

// Update is a drivers.FixSink. A fix without a position clears the stamp:
// a receiver that lost its fix must not keep lending its last position.
func (s *locationStamp) Update(f drivers.Fix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !f.HasPosition() {
		s.loc = nil
		return
	}
	s.loc = &attest.Location{
		Lat: f.Lat, Lon: f.Lon, AltMSL: f.AltMSL,
		TimeUnixNano: f.TimeUnixNano,
		Mode:         uint8(f.Mode), Sats: f.Sats, HDOP: f.HDOP,
	}
	s.received = s.now()
}

// Current returns the latest position if it is fresh, else nil. The returned
// value is shared and must not be modified.
func (s *locationStamp) Current() *attest.Location {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loc == nil || s.now().Sub(s.received) > s.maxAge {
		return nil
	}
	return s.loc
}
