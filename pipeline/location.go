package pipeline

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
	refused  uint64 // fixes that could not be a "loc" claim
}

func newLocationStamp(maxAge time.Duration, now func() time.Time) *locationStamp {
	return &locationStamp{maxAge: maxAge, now: now}
}

// Update is a drivers.FixSink. An epoch in which the receiver says it has
// no fix clears the stamp: a receiver that lost its fix must not keep
// lending its last position. A fix that could not be signed as "loc" (a
// driver let an impossible value through) is ignored and counted: one bad
// observation must not make every other record fail to encode.
func (s *locationStamp) Update(f drivers.Fix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !f.HasPosition() {
		s.loc = nil
		return
	}
	l := &attest.Location{
		Lat: f.Lat, Lon: f.Lon, AltMSL: f.AltMSL,
		TimeUnixNano: f.TimeUnixNano,
		Mode:         uint8(f.Mode), Sats: f.Sats, HDOP: f.HDOP,
		Quality: f.Quality, HAccM: f.HAccM,
	}
	if attest.CheckLocation(l) != nil {
		s.refused++
		return
	}
	s.loc, s.received = l, s.now()
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
