package mqtt

import (
	"encoding/json"
	"fmt"
	"time"
)

// Status is a snapshot of the uplink for `edge-agent status` and doctor.
type Status struct {
	Connected bool   `json:"connected"`
	Server    string `json:"server,omitempty"` // current broker, or the last one tried
	// Since is when the current connection was made, or when the uplink
	// last lost or failed to make one.
	Since time.Time `json:"since,omitzero"`
	// LastError says in plain words why the last connection attempt failed
	// or the last connection ended; empty once a connection has succeeded.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// ClientCertExpiry is the NotAfter of the mutual-TLS client certificate.
	ClientCertExpiry time.Time `json:"client_cert_expiry,omitzero"`

	Published  uint64 `json:"published"`  // PUBLISHes of records, re-sends included
	Acked      uint64 `json:"acked"`      // records PUBACKed by the broker
	AckedSeq   uint64 `json:"acked_seq"`  // highest seq acked in the queue
	Resent     uint64 `json:"resent"`     // records published again after a reconnect
	Reconnects uint64 `json:"reconnects"` // successful connections after the first
	Failures   uint64 `json:"failures"`   // failed connection attempts and lost connections
	InFlight   int    `json:"in_flight"`  // published, not yet PUBACKed (or receipted, with collectors)
	// DupResent counts PUBLISHes sent again with DUP on the same connection
	// after waiting DupAfter for a PUBACK; Stalled says which record is
	// waiting now ("" when none is).
	DupResent uint64 `json:"dup_resent"`
	Stalled   string `json:"stalled,omitempty"`

	// With collectors set: receipts taken from trusted collectors, receipts
	// refused (bad signature, untrusted collector, another device), and who
	// sent the last one.
	Receipts        uint64    `json:"receipts,omitempty"`
	ReceiptsRefused uint64    `json:"receipts_refused,omitempty"`
	LastReceipt     time.Time `json:"last_receipt,omitzero"`
	LastReceiptBy   string    `json:"last_receipt_by,omitempty"`
}

// Status returns a snapshot; safe to call concurrently with Run.
func (u *Uplink) Status() Status {
	u.mu.Lock()
	st := u.st
	u.mu.Unlock()
	ws := u.w.Stats()
	st.Published, st.Resent, st.Acked, st.AckedSeq, st.InFlight = ws.Sent, ws.Resent, ws.Confirmed, ws.AckedSeq, ws.InFlight
	st.Receipts = ws.Receipts
	if len(u.c.Collectors) > 0 {
		// Without DUP, a re-send is a new PUBLISH.
		st.Published += ws.Retried
		st.Resent += ws.Retried
	} else if ws.StalledSeq != 0 {
		st.Stalled = fmt.Sprintf("broker has not acknowledged seq %d for %v: re-sent it (DUP)", ws.StalledSeq, time.Since(ws.StalledSince).Round(time.Second))
	}
	return st
}

func (u *Uplink) update(f func(*Status)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f(&u.st)
}

// statusDoc is the retained document on {prefix}/{device}/status. State is a
// string on purpose: a consumer never has to guess what a zero means.
type statusDoc struct {
	State   string `json:"state"` // "online" or "offline"
	Device  string `json:"device"`
	Version string `json:"version,omitempty"`
	Since   string `json:"since,omitempty"` // RFC 3339; absent in the Last Will, written long before it fires
	Reason  string `json:"reason,omitempty"`
}

// Status document states.
const (
	stateOnline  = "online"
	stateOffline = "offline"
)

func (u *Uplink) statusPayload(state string, since time.Time, reason string) []byte {
	d := statusDoc{State: state, Device: u.c.DeviceID, Version: u.c.Version, Reason: reason}
	if !since.IsZero() {
		d.Since = since.UTC().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(d)
	if err != nil {
		panic("mqtt: marshal status document: " + err.Error()) // only strings: cannot fail
	}
	return b
}
