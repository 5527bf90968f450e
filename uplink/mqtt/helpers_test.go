package mqtt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/store"
)

// fakeQueue is an in-memory uplink.Queue that checks how it is used: acks
// must never go backwards nor past what was appended, and only one goroutine
// may use it at a time.
type fakeQueue struct {
	tb testing.TB

	mu      sync.Mutex
	recs    []store.Record // seq i+1 at index i
	acked   uint64
	changed chan struct{}
	acks    int // Ack calls
	busy    bool
}

func newFakeQueue(tb testing.TB) *fakeQueue {
	return &fakeQueue{tb: tb, changed: make(chan struct{})}
}

// record builds a ~300-byte payload that names its seq, so a mixed-up or
// corrupted delivery shows which one.
func record(seq uint64, size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, seq)
	r := rand.New(rand.NewPCG(seq, 42))
	for i := 8; i < size; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func (q *fakeQueue) add(n, size int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for range n {
		seq := uint64(len(q.recs) + 1)
		q.recs = append(q.recs, store.Record{Seq: seq, Data: record(seq, size)})
	}
	close(q.changed)
	q.changed = make(chan struct{})
}

func (q *fakeQueue) enter() func() {
	q.mu.Lock()
	if q.busy {
		q.tb.Errorf("fakeQueue: used from two goroutines at once")
	}
	q.busy = true
	q.mu.Unlock()
	return func() {
		q.mu.Lock()
		q.busy = false
		q.mu.Unlock()
	}
}

func (q *fakeQueue) Pending(after uint64, max int) ([]store.Record, error) {
	defer q.enter()()
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []store.Record
	for i := after; i < uint64(len(q.recs)) && len(out) < max; i++ {
		r := q.recs[i]
		out = append(out, store.Record{Seq: r.Seq, Data: append([]byte(nil), r.Data...)})
	}
	return out, nil
}

func (q *fakeQueue) Ack(upTo uint64) error {
	defer q.enter()()
	q.mu.Lock()
	defer q.mu.Unlock()
	if upTo < q.acked || upTo > uint64(len(q.recs)) {
		q.tb.Errorf("fakeQueue: Ack(%d) with acked %d and %d records", upTo, q.acked, len(q.recs))
		return fmt.Errorf("fake: bad ack %d", upTo)
	}
	q.acked = upTo
	q.acks++
	return nil
}

func (q *fakeQueue) Acked() (uint64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.acked, nil
}

func (q *fakeQueue) Changed() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.changed
}

func (q *fakeQueue) ackedSeq() uint64 { a, _ := q.Acked(); return a }

func testLogger(tb testing.TB) *slog.Logger {
	tb.Helper()
	if os.Getenv("MQTT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testOpts are fast-retrying options for one device against url.
func testOpts(tb testing.TB, url string) Opts {
	tb.Helper()
	o := DefaultOpts()
	o.Servers = []string{url}
	o.DeviceID = "dev1"
	o.Version = "test"
	o.BackoffMin, o.BackoffMax = 50*time.Millisecond, 400*time.Millisecond
	o.ConnectTimeout = 3 * time.Second
	o.KeepAlive = 5 * time.Second
	o.Logger = testLogger(tb)
	o.Rand = rand.New(rand.NewPCG(1, 2))
	return o
}

// runUplink runs u on q until the returned stop is called (or the test ends)
// and fails the test if Run returns an error.
func runUplink(tb testing.TB, u *Uplink, q *fakeQueue) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx, q) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				tb.Errorf("Run did not return within 10s of cancel")
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

func mustNew(tb testing.TB, o Opts) *Uplink {
	tb.Helper()
	u, err := New(o)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return u
}

var errHandler = errors.New("handler refuses")
