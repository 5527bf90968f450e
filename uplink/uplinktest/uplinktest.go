// Package uplinktest provides a hand-written, in-memory fake of uplink.Queue
// for the unit tests of every transport (file, mqtt, p2p), and a generator of
// records shaped like the real ones (tagged COSE_Sign1).
//
// The fake is stricter than it needs to be where that catches transport bugs:
// it remembers every Ack call, refuses acks past the last record, and counts
// Pending calls so a test can tell a busy loop from a wait on Changed.
//
// Concurrency: all methods of *Queue are safe for concurrent use, so a test
// goroutine can Add and inspect while the uplink under test runs.
package uplinktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/edge-agent/edge-agent/store"
	"github.com/edge-agent/edge-agent/uplink"
)

// ErrAckBeyondHead is returned by Queue.Ack when upTo is past the last record
// added: the transport acked something it cannot have delivered.
var ErrAckBeyondHead = errors.New("uplinktest: ack beyond the last record")

// Queue is an in-memory uplink.Queue. The zero value is not usable; call
// NewQueue.
type Queue struct {
	mu       sync.Mutex
	recs     []store.Record // seq ascending
	acked    uint64
	acks     []uint64 // every Ack call's argument, in order
	changed  chan struct{}
	pendings int
	ackErr   error
	pendErr  error
	ackWait  chan struct{} // closed and replaced on every successful Ack
}

var _ uplink.Queue = (*Queue)(nil)

// NewQueue returns an empty queue.
func NewQueue() *Queue {
	return &Queue{changed: make(chan struct{}), ackWait: make(chan struct{})}
}

// Add appends records with the given COSE bytes, numbering them after the
// last one, wakes Changed waiters, and returns the records as stored.
func (q *Queue) Add(data ...[]byte) []store.Record {
	q.mu.Lock()
	defer q.mu.Unlock()
	next := uint64(1)
	if n := len(q.recs); n > 0 {
		next = q.recs[n-1].Seq + 1
	}
	out := make([]store.Record, 0, len(data))
	for i, d := range data {
		r := store.Record{Seq: next + uint64(i), Data: bytes.Clone(d)}
		q.recs = append(q.recs, r)
		out = append(out, store.Record{Seq: r.Seq, Data: bytes.Clone(d)})
	}
	q.wakeLocked()
	return out
}

// AddN appends n records of about size bytes each, made by Record.
func (q *Queue) AddN(n, size int) []store.Record {
	q.mu.Lock()
	next := uint64(1)
	if k := len(q.recs); k > 0 {
		next = q.recs[k-1].Seq + 1
	}
	q.mu.Unlock()
	data := make([][]byte, n)
	for i := range data {
		data[i] = Record(next+uint64(i), size).Data
	}
	return q.Add(data...)
}

// Drop removes records with seq in r from the queue without acking them, as
// quota eviction does; later records keep their seqs, leaving a gap.
func (q *Queue) Drop(r store.Range) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.recs = slices.DeleteFunc(q.recs, func(rec store.Record) bool { return rec.Seq >= r.From && rec.Seq <= r.To })
}

func (q *Queue) wakeLocked() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// Pending returns up to max records with seq > after, oldest first. The
// records are copies: a transport that scribbles on them cannot corrupt the
// queue.
func (q *Queue) Pending(after uint64, max int) ([]store.Record, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pendings++
	if q.pendErr != nil {
		return nil, q.pendErr
	}
	if max <= 0 {
		return nil, fmt.Errorf("uplinktest: pending: max %d must be positive", max)
	}
	var out []store.Record
	for _, r := range q.recs {
		if r.Seq <= after {
			continue
		}
		if len(out) == max {
			break
		}
		out = append(out, store.Record{Seq: r.Seq, Data: bytes.Clone(r.Data)})
	}
	return out, nil
}

// Ack records the call and, unless SetAckErr made it fail, raises the acked
// mark to upTo. Acking backwards is allowed and changes nothing, as in the
// store; acking past the last record is ErrAckBeyondHead.
func (q *Queue) Ack(upTo uint64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.acks = append(q.acks, upTo)
	if q.ackErr != nil {
		return q.ackErr
	}
	if n := len(q.recs); n == 0 || upTo > q.recs[n-1].Seq {
		return fmt.Errorf("%w: ack %d", ErrAckBeyondHead, upTo)
	}
	if upTo > q.acked {
		q.acked = upTo
	}
	close(q.ackWait)
	q.ackWait = make(chan struct{})
	return nil
}

// Acked returns the highest acknowledged seq.
func (q *Queue) Acked() (uint64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.acked, nil
}

// Changed returns a channel closed by the next Add.
func (q *Queue) Changed() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.changed
}

// SetAckErr makes every later Ack fail with err (nil restores success).
func (q *Queue) SetAckErr(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ackErr = err
}

// SetPendingErr makes every later Pending fail with err (nil restores it).
func (q *Queue) SetPendingErr(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pendErr = err
}

// Acks returns the argument of every Ack call so far, in order.
func (q *Queue) Acks() []uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.acks)
}

// PendingCalls returns how many times Pending was called.
func (q *Queue) PendingCalls() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pendings
}

// Records returns copies of every record still in the queue.
func (q *Queue) Records() []store.Record {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]store.Record, len(q.recs))
	for i, r := range q.recs {
		out[i] = store.Record{Seq: r.Seq, Data: bytes.Clone(r.Data)}
	}
	return out
}

// WaitAcked blocks until the acked mark reaches seq and fails tb if it does
// not within timeout.
func (q *Queue) WaitAcked(tb testing.TB, seq uint64, timeout time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		q.mu.Lock()
		acked, wait := q.acked, q.ackWait
		q.mu.Unlock()
		if acked >= seq {
			return
		}
		select {
		case <-wait:
		case <-ctx.Done():
			tb.Fatalf("uplinktest: acked %d after %v, want %d", acked, timeout, seq)
		}
	}
}

// coseSign1 is the shape of a COSE_Sign1 (RFC 9052 §4.2) as a CBOR array.
type coseSign1 struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected map[int]any
	Payload     []byte
	Signature   []byte
}

// Record returns a record shaped like a real one: a CBOR tag 18 COSE_Sign1
// whose payload names seq and is padded so the whole is about size bytes.
// The signature is filler: the fake checks shape, not keys. Equal arguments
// give equal bytes.
func Record(seq uint64, size int) store.Record {
	payload := fmt.Appendf(nil, "record %d ", seq)
	for len(payload) < size-80 {
		payload = append(payload, byte('a'+len(payload)%26))
	}
	sig := make([]byte, 64)
	for i := range sig {
		sig[i] = byte(seq) ^ byte(i)
	}
	// Protected header {1: -8} (alg: EdDSA), encoded as a bstr.
	msg := coseSign1{Protected: []byte{0xa1, 0x01, 0x27}, Unprotected: map[int]any{}, Payload: payload, Signature: sig}
	data, err := cbor.Marshal(cbor.Tag{Number: 18, Content: msg})
	if err != nil {
		panic("uplinktest: encode record: " + err.Error()) // a fixed shape cannot fail
	}
	return store.Record{Seq: seq, Data: data}
}
