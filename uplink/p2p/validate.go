package p2p

import (
	"errors"
	"fmt"
	"time"

	"github.com/edge-agent/edge-agent/attest"
)

// Verdict is what a node makes of one gossiped record. It maps onto the
// gossipsub validation results: Reject lowers the sender's peer score,
// Ignore drops the message without blame.
type Verdict int

const (
	// Accept: a well-formed record whose signature verifies; forwarded.
	Accept Verdict = iota + 1
	// Ignore: a valid record this node will not forward now — stamped too
	// far in the future (a device clock ahead, not proof of malice), or from
	// a device outside the allow-list. The device re-publishes later.
	Ignore
	// Reject: bytes that are not a record, too large, or a bad signature.
	// Honest nodes validate before publishing or forwarding, so only the
	// peer that injected it can have sent it: it is penalised.
	Reject
)

func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accept"
	case Ignore:
		return "ignore"
	case Reject:
		return "reject"
	}
	return "unknown"
}

// Checker judges records for a topic validator. The zero value checks
// signatures and sizes only.
type Checker struct {
	// MaxClockSkew is how far a record's time may be ahead of Now; 0 means
	// no check.
	MaxClockSkew time.Duration
	// Allowed, when non-nil, lists the device ids whose records are
	// forwarded; others are ignored.
	Allowed map[string]bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// errFuture and errNotAllowed explain Ignore verdicts.
var (
	errFuture     = errors.New("record time is too far in the future")
	errNotAllowed = errors.New("device is not in the allow-list")
)

// Check decodes raw, checks its size, structure and signature, and returns
// the verdict with the decoded record (nil unless it decoded) and why it was
// not accepted. It never panics on any input.
//
// Whoever published the gossip message does not matter: the record's own
// signature proves which device made it, so relays, gateways or a collector
// re-broadcasting a record are all fine, and replays are harmless (receivers
// dedupe by device, chain and seq).
func (c *Checker) Check(raw []byte) (Verdict, *attest.Record, error) {
	if len(raw) > attest.MaxRecordSize {
		return Reject, nil, fmt.Errorf("p2p: check record: %d bytes exceeds %d", len(raw), attest.MaxRecordSize)
	}
	rec, err := attest.Decode(raw)
	if err != nil {
		return Reject, nil, fmt.Errorf("p2p: check record: %w", err)
	}
	if err := rec.Verify(); err != nil {
		return Reject, rec, fmt.Errorf("p2p: check record: %w", err)
	}
	if c.Allowed != nil && !c.Allowed[rec.DeviceID] {
		return Ignore, rec, fmt.Errorf("p2p: check record of %s: %w", rec.DeviceID, errNotAllowed)
	}
	if c.MaxClockSkew > 0 {
		now := time.Now
		if c.Now != nil {
			now = c.Now
		}
		if limit := now().Add(c.MaxClockSkew).UnixNano(); rec.Claims.Time > limit {
			return Ignore, rec, fmt.Errorf("p2p: check record seq %d of %s: %w (by %v)", rec.Claims.Seq, rec.DeviceID,
				errFuture, time.Duration(rec.Claims.Time-limit)+c.MaxClockSkew)
		}
	}
	return Accept, rec, nil
}
