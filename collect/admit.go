package collect

import (
	"sync"
	"time"

	"github.com/edge-agent/edge-agent/attest"
)

// Voucher admits devices that are not in admission.allow: the seam for
// manufacturer certificates (a device whose record carries a certificate
// chaining to a trusted manufacturer). Vouches is called for every record
// of a device not on the list, concurrently; it must be fast and must not
// block. Nil means the allow-list alone decides.
type Voucher interface {
	Vouches(rec *attest.Record) bool
}

// Reasons a record is refused before the database; the label values of
// edge_collector_rejected_total.
const (
	rejectMalformed    = "malformed"
	rejectBadSignature = "bad-signature"
	rejectFuture       = "future"
	rejectNotAllowed   = "not-allowed"
	rejectRate         = "rate"
	rejectQuota        = "quota"
	rejectShed         = "shed" // unknown device while the database is behind
	rejectTooMany      = "too-many-devices"
)

// RejectReasons are every reason a record can be refused for.
var RejectReasons = []string{rejectMalformed, rejectBadSignature, rejectFuture, rejectNotAllowed, rejectRate, rejectQuota, rejectShed, rejectTooMany}

// Observer receives the collector's measurements as they happen. The
// edge-collector passes the Prometheus one (collect/collectmetrics); nil
// (tests, other embedders) measures nothing. Methods are called
// concurrently and must not block.
type Observer interface {
	Verified()                // a record's signature verified
	Stored(attest.Verdict)    // a record committed: Accepted, Duplicate or Forked
	Rejected(reason string)   // refused before the store (one of RejectReasons)
	Receipt(transport string) // a receipt published: "p2p" or "mqtt"
	Commit(time.Duration)     // one batch committed in this long
	Lag(time.Duration)        // commit time minus the device's signing time, per record
	StoreError()              // a commit failed (records come again)
}

type noObserver struct{}

func (noObserver) Verified()             {}
func (noObserver) Stored(attest.Verdict) {}
func (noObserver) Rejected(string)       {}
func (noObserver) Receipt(string)        {}
func (noObserver) Commit(time.Duration)  {}
func (noObserver) Lag(time.Duration)     {}
func (noObserver) StoreError()           {}

// maxTracked bounds the per-device table of an open collector (no
// allow-list): past it, devices this collector has never stored are refused
// rather than let fresh keys grow its memory without bound.
const maxTracked = 1 << 18

// admitter applies collector.toml's [admission]. Safe for concurrent use.
type admitter struct {
	allow        map[string]bool // nil: open network
	vouch        Voucher
	rate, burst  float64 // tokens per second, bucket size; rate 0 = off
	quota        uint64  // bytes per device; 0 = off
	mu           sync.Mutex
	devs         map[string]*devState
	knownDevices int
}

type devState struct {
	bytes  uint64    // stored, as far as this collector knows
	held   uint64    // admitted, not yet committed
	known  bool      // on the allow-list, vouched for, or stored before
	tokens float64   // rate bucket
	last   time.Time // bucket refill time
}

func newAdmitter(a Admission, vouch Voucher) *admitter {
	ad := &admitter{vouch: vouch, rate: float64(a.DeviceRate), burst: float64(a.DeviceBurst),
		quota: uint64(a.DeviceQuota), devs: map[string]*devState{}}
	if len(a.Allow) > 0 || a.RefuseUntrusted { // refuse_untrusted: the Voucher admits the rest
		ad.allow = make(map[string]bool, len(a.Allow))
		for _, d := range a.Allow {
			ad.allow[d] = true
		}
	}
	return ad
}

// seed loads what the store already holds: those devices are known, and
// their stored bytes count against the quota.
func (a *admitter) seed(sum []DeviceSummary) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, d := range sum {
		st := a.state(d.Device)
		for _, c := range d.Chains {
			st.bytes += c.Bytes
		}
		a.markKnown(st)
	}
}

func (a *admitter) state(dev string) *devState {
	st := a.devs[dev]
	if st == nil {
		st = &devState{tokens: a.burst}
		a.devs[dev] = st
	}
	return st
}

func (a *admitter) markKnown(st *devState) {
	if !st.known {
		st.known = true
		a.knownDevices++
	}
}

// admit decides on one verified record: reason is "" when admitted, and
// known says whether the device gets the priority queue.
func (a *admitter) admit(rec *attest.Record, now time.Time) (known bool, reason string) {
	dev := rec.DeviceID
	listed := a.allow != nil && a.allow[dev]
	if a.allow != nil && !listed && (a.vouch == nil || !a.vouch.Vouches(rec)) {
		return false, rejectNotAllowed
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.devs[dev]
	if st == nil {
		if !listed && len(a.devs) >= maxTracked { // fresh keys, vouched or not, are bounded too
			return false, rejectTooMany
		}
		st = a.state(dev)
		st.last = now
	}
	if a.allow != nil { // listed or vouched
		a.markKnown(st)
	}
	if a.quota > 0 && st.bytes+st.held+uint64(len(rec.Raw)) > a.quota {
		return st.known, rejectQuota
	}
	if a.rate > 0 {
		st.tokens = min(a.burst, st.tokens+now.Sub(st.last).Seconds()*a.rate)
		st.last = now
		if st.tokens < 1 {
			return st.known, rejectRate
		}
		st.tokens--
	}
	st.held += uint64(len(rec.Raw))
	return st.known, ""
}

// settle ends what admit held for a record of n bytes: stored (counts
// against the quota, and the device is known from now on) or not
// (duplicate, fork, failed commit).
func (a *admitter) settle(dev string, n int, stored bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.state(dev)
	st.held -= min(st.held, uint64(n))
	if stored {
		st.bytes += uint64(n)
		a.markKnown(st)
	}
}

// known is the number of devices known to this collector (metrics).
func (a *admitter) known() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.knownDevices
}
