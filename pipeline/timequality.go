package pipeline

import (
	"os"
	"sync"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/status"
)

// clockQuality says how far the device clock can be trusted, for the "tq"
// claim on every record. GNSS drivers report their offsets through
// noteOffset; the kernel's NTP state is read for each batch.
//
// The rule (docs/attestation.md): a fresh GNSS offset under a second makes
// the source "gnss" ("gnss+pps" when the kernel is PPS-disciplined too);
// else a synchronised kernel is "ntp"; else a board with an RTC is "rtc";
// else "unsynchronised". The last measured GNSS offset is always carried.
type clockQuality struct {
	now    func() time.Time
	kernel func() (status.Clock, error)
	rtc    bool

	mu       sync.Mutex
	offset   time.Duration
	offsetAt time.Time // device clock when offset was measured; zero: never
}

// gnssTimeFresh is how long a GNSS offset vouches for the clock.
const gnssTimeFresh = 10 * time.Second

func newClockQuality(now func() time.Time, kernel func() (status.Clock, error)) *clockQuality {
	_, err := os.Stat("/dev/rtc0")
	return &clockQuality{now: now, kernel: kernel, rtc: err == nil}
}

// noteOffset records GNSS time minus the device clock, measured at at.
func (c *clockQuality) noteOffset(off time.Duration, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset, c.offsetAt = off, at
}

// current returns the claim for records signed now (the pipeline asks once
// a batch; adjtimex is a cheap system call).
func (c *clockQuality) current() *attest.TimeQuality {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	tq := &attest.TimeQuality{Source: attest.TimeUnsync}
	var k status.Clock
	if c.kernel != nil {
		k, _ = c.kernel()
	}
	synced := k.Synced != nil && *k.Synced
	if !c.offsetAt.IsZero() {
		off := int64(c.offset)
		tq.OffsetNS = &off
	}
	fresh := !c.offsetAt.IsZero() && now.Sub(c.offsetAt) < gnssTimeFresh && now.Sub(c.offsetAt) > -time.Second
	switch {
	case fresh && c.offset.Abs() < time.Second && k.PPS:
		tq.Source = attest.TimeGNSSPPS
	case fresh && c.offset.Abs() < time.Second:
		tq.Source = attest.TimeGNSS
	case synced:
		tq.Source = attest.TimeNTP
	case c.rtc:
		tq.Source = attest.TimeRTC
	}
	if synced {
		e := int64(k.MaxErrorSeconds * 1e9)
		tq.MaxErrorNS = &e
	}
	return tq
}
