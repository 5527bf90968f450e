// Package uplink defines how a transport takes signed records out of the
// outbox. Transports live in subpackages (file, mqtt, p2p); the daemon wires
// each to its own Queue view of the store.
//
// Delivery is at-least-once and in seq order per uplink. A transport calls
// Ack only once the far side holds the record durably (fsync, PUBACK,
// collector receipts); the store deletes a record when every uplink has acked
// it.
//
// The transports that wait for the far side (mqtt, p2p) share one delivery
// loop, Window: reading the outbox in order, the in-flight limit, re-sends,
// ack coalescing and receipt coverage. Each supplies only a Link: how to
// send a record, and whether it is confirmed (a PUBACK, or signed receipts
// passed to Window.Receive).
package uplink

import (
	"context"

	"github.com/edge-agent/edge-agent/store"
)

// Queue is one uplink's view of the outbox. Implementations are safe for use
// by one uplink goroutine; *store.Queue is the real one.
type Queue interface {
	// Pending returns up to max records with seq > after, oldest first.
	Pending(after uint64, max int) ([]store.Record, error)
	// Ack marks every record with seq <= upTo delivered by this uplink.
	Ack(upTo uint64) error
	// Acked returns the highest acknowledged seq (0 when none).
	Acked() (uint64, error)
	// Changed returns a channel that is closed once records are appended
	// after the call.
	Changed() <-chan struct{}
}

// Uplink is one transport.
type Uplink interface {
	// Name is the uplink's key in the store's acknowledgement table: "file",
	// "mqtt", "p2p".
	Name() string
	// Run delivers records from q until ctx is done; cancellation is a clean
	// exit. Records stay in the outbox until acked, so Run may return at any
	// point without losing anything.
	Run(ctx context.Context, q Queue) error
}
