package uplink_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/uplink"
	"github.com/edge-agent/edge-agent/uplink/uplinktest"
)

// The tests here run the Window against a fake far side that drops sends,
// confirms late, out of order and twice, and loses the link now and then.
// The queue they ack checks every Ack as it happens: a window that acks a
// record the far side has not confirmed (a loss) or acks a mark twice
// fails, and so does one that stops short of the end or counts a record
// confirmed twice.

// fakeClock is the window's clock; the test moves it and fires the ticker.
type fakeClock struct {
	mu   sync.Mutex
	now  time.Time
	tick chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_700_000_000, 0), tick: make(chan time.Time, 1)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// step advances the clock by d and fires the ticker (dropped while the
// window has not taken the last one).
func (c *fakeClock) step(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	c.mu.Unlock()
	select {
	case c.tick <- now:
	default:
	}
}

func (c *fakeClock) newTicker(time.Duration) (<-chan time.Time, func()) { return c.tick, func() {} }

// token is the fake transport's handle for one record on one connection,
// like an MQTT publish token: a re-send on the same connection shares it.
type token struct {
	done bool
	err  error
}

// farSide is the fake transport and the collectors or broker behind it.
// All of it is guarded by mu: Send and Confirmed run on the window's
// goroutine, delivery on the test's.
type farSide struct {
	mu        sync.Mutex
	rng       *rand.Rand
	receipts  bool     // confirm by receipts (three collectors) instead of tokens
	chain     [16]byte // the records' chain, with receipts
	w         *uplink.Window
	pending   []func() // confirmations sent, not yet delivered
	confirmed map[uint64]map[string]bool
	holds     map[string]map[uint64]bool // collector → seqs it holds
	sentIn    map[uint64]int             // seq → the connection it was last sent on
	first     uint64                     // first sends on a connection
	again     uint64                     // of those, seqs sent on an earlier one
	retries   uint64                     // sends again on the same connection
	news      chan struct{}
	lost      chan error
	session   int
	tokens    []*token // this connection's
}

var collectors = []string{"a", "b", "c"}

func newFarSide(seed uint64, receipts bool) *farSide {
	f := &farSide{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), receipts: receipts,
		confirmed: map[uint64]map[string]bool{}, holds: map[string]map[uint64]bool{}, sentIn: map[uint64]int{},
		news: make(chan struct{})}
	for _, c := range collectors {
		f.holds[c] = map[uint64]bool{}
	}
	return f
}

// link is a new connection: what was in flight on the last one is gone,
// and its undelivered PUBACKs with it.
func (f *farSide) link() uplink.Link {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.session++
	if !f.receipts {
		f.pending = nil
	}
	f.lost = make(chan error, 1)
	f.tokens = nil
	l := uplink.Link{Send: f.send, Lost: f.lost}
	if !f.receipts {
		l.Confirmed = f.isConfirmed
		l.Wake = func(*uplink.Flight) <-chan struct{} {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.news
		}
	}
	return l
}

func (f *farSide) send(fs []*uplink.Flight) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fl := range fs {
		switch prev, ok := f.sentIn[fl.Seq]; {
		case fl.Tries > 1:
			f.retries++
		case ok && prev < f.session:
			f.first++
			f.again++
		default:
			f.first++
		}
		f.sentIn[fl.Seq] = f.session
		if f.receipts {
			f.sendToCollectors(fl.Seq)
			continue
		}
		tok, _ := fl.Handle.(*token)
		if tok == nil {
			tok = &token{}
			fl.Handle = tok
			f.tokens = append(f.tokens, tok)
		}
		if f.rng.IntN(5) == 0 {
			continue // dropped on the way, or its PUBACK was
		}
		seq, session := fl.Seq, f.session
		f.pending = append(f.pending, func() {
			if f.session != session || tok.err != nil {
				return // the connection it came on is gone
			}
			f.confirm(seq, "broker")
			tok.done = true
		})
	}
	return nil
}

// sendToCollectors is gossip: each collector gets the record or not, and
// later receipts everything it holds (so receipts repeat and overlap); now
// and then a collector receipts another chain's seqs, which count for
// nothing here.
func (f *farSide) sendToCollectors(seq uint64) {
	for _, c := range collectors {
		if f.rng.IntN(10) < 3 {
			continue
		}
		f.holds[c][seq] = true
		chain := f.chain
		if f.rng.IntN(20) == 0 {
			chain = [16]byte{0xff}
		}
		f.pending = append(f.pending, func() {
			var seqs []uint64
			for s := range f.holds[c] {
				seqs = append(seqs, s)
			}
			rs := ranges(seqs)
			if chain == f.chain {
				for _, s := range seqs {
					f.confirm(s, c)
				}
			}
			f.w.Receive(uplink.Receipt{Collector: c, Chains: map[[16]byte][][2]uint64{chain: rs}})
		})
	}
}

func (f *farSide) confirm(seq uint64, by string) {
	if f.confirmed[seq] == nil {
		f.confirmed[seq] = map[string]bool{}
	}
	f.confirmed[seq][by] = true
	close(f.news)
	f.news = make(chan struct{})
}

func (f *farSide) isConfirmed(fl *uplink.Flight) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tok := fl.Handle.(*token)
	return tok.done, tok.err
}

// deliver hands over one waiting confirmation, picked at random (so they
// arrive out of order and late), sometimes keeping it to deliver again.
func (f *farSide) deliver() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pending) == 0 {
		return
	}
	i := f.rng.IntN(len(f.pending))
	f.pending[i]()
	if f.rng.IntN(4) != 0 {
		f.pending = append(f.pending[:i], f.pending[i+1:]...)
	}
}

// drop ends the connection: its tokens fail, as paho's do, and Lost fires.
func (f *farSide) drop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tokens {
		if !t.done {
			t.err = errors.New("connection reset")
		}
	}
	close(f.news)
	f.news = make(chan struct{})
	select {
	case f.lost <- errors.New("connection reset"):
	default:
	}
}

// held reports whether the far side has confirmed seq enough for an ack.
func (f *farSide) held(seq uint64, need int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.confirmed[seq]) >= need
}

// ranges merges seqs into sorted inclusive ranges, as a collector's
// receipt carries them.
func ranges(seqs []uint64) [][2]uint64 {
	slices.Sort(seqs)
	var out [][2]uint64
	for _, q := range seqs {
		if n := len(out); n > 0 && q == out[n-1][1]+1 {
			out[n-1][1] = q
			continue
		}
		out = append(out, [2]uint64{q, q})
	}
	return out
}

// checkQueue fails the test on an Ack that would lose a record or repeats
// a mark.
type checkQueue struct {
	*uplinktest.Queue
	tb   testing.TB
	held func(seq uint64) bool
	mu   sync.Mutex
	last uint64
}

func (q *checkQueue) Ack(upTo uint64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if upTo <= q.last {
		q.tb.Errorf("Ack(%d) after Ack(%d): acked twice", upTo, q.last)
	}
	for s := q.last + 1; s <= upTo; s++ {
		if !q.held(s) {
			q.tb.Errorf("Ack(%d) loses seq %d: the far side has not confirmed it", upTo, s)
			break
		}
	}
	q.last = max(q.last, upTo)
	return q.Queue.Ack(upTo)
}

// signedRecords returns n records of one chain that attest.Decode takes.
func signedRecords(tb testing.TB, chain [16]byte, n int) [][]byte {
	tb.Helper()
	s, err := attest.CreateKey("file:"+tb.TempDir()+"/k", bytes.NewReader(make([]byte, 64)))
	if err != nil {
		tb.Fatal(err)
	}
	out := make([][]byte, n)
	for i := range out {
		p, err := attest.EncodePayload(&attest.Claims{Chain: chain, Seq: uint64(i + 1), Time: int64(i + 1), Kind: "test.count",
			Source: "t", Obs: map[string]any{"n": i}})
		if err != nil {
			tb.Fatal(err)
		}
		if out[i], err = attest.SignPayload(s, p); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

func TestWindowHostileTransport(t *testing.T) {
	const n = 300
	for _, tt := range []struct {
		name     string
		receipts bool
	}{
		{"confirmed by the transport", false},
		{"confirmed by receipts", true},
	} {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("%s/seed %d", tt.name, seed), func(t *testing.T) {
				far := newFarSide(seed, tt.receipts)
				far.chain = [16]byte{7}
				clk := newFakeClock()
				need := 1
				o := uplink.WindowOpts{Name: "test", Size: 16, Batch: 16, ResendAfter: 200 * time.Millisecond,
					ResendMax: 800 * time.Millisecond, Now: clk.Now, NewTicker: clk.newTicker}
				if tt.receipts {
					need, o.MinReceipts = 2, 2
				} else {
					o.MaxResends, o.GiveUp, o.GiveUpErr = 3, 5*time.Second, errors.New("gave up")
				}
				w := uplink.NewWindow(o)
				far.w = w
				q := &checkQueue{Queue: uplinktest.NewQueue(), tb: t, held: func(s uint64) bool { return far.held(s, need) }}
				if tt.receipts {
					q.Add(signedRecords(t, far.chain, n)...)
				} else {
					q.AddN(n, 100)
				}

				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				sessions := 0
				go func() {
					defer close(done)
					for ctx.Err() == nil {
						sessions++
						if err := w.Run(ctx, q, far.link()); err != nil {
							var qe *uplink.QueueError
							if errors.As(err, &qe) {
								t.Errorf("Run: %v", err)
								return
							}
						}
					}
				}()
				steps := 0
				for ; ; steps++ {
					if a, _ := q.Acked(); a == n {
						break
					}
					if steps > 100_000 || t.Failed() {
						a, _ := q.Acked()
						cancel()
						<-done
						t.Fatalf("acked %d of %d after %d steps; stats %+v", a, n, steps, w.Stats())
					}
					far.deliver()
					if steps%50 == 0 {
						clk.step(100 * time.Millisecond)
					}
					if steps%1000 == 999 {
						far.drop()
					}
					if steps%8 == 0 {
						time.Sleep(50 * time.Microsecond) // let the window's goroutine run
					}
				}
				cancel()
				<-done
				st := w.Stats()
				if st.Confirmed != n || st.AckedSeq != n || st.InFlight != 0 {
					t.Errorf("stats %+v: want %d confirmed, acked_seq %d, nothing in flight", st, n, n)
				}
				if st.Sent != far.first || st.Resent != far.again || st.Retried != far.retries {
					t.Errorf("stats %+v: want sent %d, resent %d, retried %d as the far side counted", st, far.first, far.again, far.retries)
				}
				if st.Retried == 0 {
					t.Errorf("stats %+v: dropped sends but no re-sends", st)
				}
				if acks := q.Acks(); len(acks) >= n {
					t.Errorf("%d Ack calls for %d records: acks are not coalesced", len(acks), n)
				}
				t.Logf("%d steps, %d connections, %d Ack calls, stats %+v", steps, sessions, len(q.Acks()), st)
			})
		}
	}
}

// instant confirms every send as it is made; Ready gates sending.
type instant struct {
	mu    sync.Mutex
	sent  []uint64
	ready bool
	asked int  // Ready calls
	never bool // confirm nothing
}

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (in *instant) link() uplink.Link {
	return uplink.Link{
		Send: func(fs []*uplink.Flight) error {
			in.mu.Lock()
			defer in.mu.Unlock()
			for _, f := range fs {
				in.sent = append(in.sent, f.Seq)
			}
			return nil
		},
		Confirmed: func(*uplink.Flight) (bool, error) { return !in.never, nil },
		Wake: func(*uplink.Flight) <-chan struct{} {
			if in.never {
				return nil
			}
			return closed
		},
		Ready: func() bool {
			in.mu.Lock()
			defer in.mu.Unlock()
			in.asked++
			return in.ready
		},
	}
}

func (in *instant) sends() []uint64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.sent)
}

func runWindow(t *testing.T, w *uplink.Window, q uplink.Queue, l uplink.Link) (cancel func() error) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, q, l) }()
	return func() error { stop(); return <-done }
}

// TestWindowCoalescesAcks: with the clock standing still, a thousand
// confirmations make one Ack, on the way out, and nothing is sent while
// the link is not ready.
func TestWindowCoalescesAcks(t *testing.T) {
	clk := newFakeClock()
	w := uplink.NewWindow(uplink.WindowOpts{Name: "test", Size: 64, Now: clk.Now, NewTicker: clk.newTicker})
	q := uplinktest.NewQueue()
	q.AddN(1000, 50)
	in := &instant{}
	stop := runWindow(t, w, q, in.link())
	asked := func() int { in.mu.Lock(); defer in.mu.Unlock(); return in.asked }
	condtest.WaitFor(t, 20*time.Second, "a look at the gate", func() bool { return asked() > 0 })
	clk.step(0) // a tick: the closed gate is checked again
	condtest.WaitFor(t, 20*time.Second, "a second look at the gate", func() bool { return asked() > 1 })
	if s := in.sends(); len(s) != 0 {
		t.Fatalf("sent %v while the link was not ready", s)
	}
	in.mu.Lock()
	in.ready = true
	in.mu.Unlock()
	clk.step(0)
	condtest.WaitFor(t, 20*time.Second, "1000 confirmations", func() bool { return w.Stats().Confirmed == 1000 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if acks := q.Acks(); !slices.Equal(acks, []uint64{1000}) {
		t.Errorf("Ack calls %v, want one: [1000]", acks)
	}
	if s := in.sends(); len(s) != 1000 || !slices.IsSorted(s) {
		t.Errorf("sent %d records (in order: %v), want 1000 in seq order", len(s), slices.IsSorted(s))
	}
}

// TestWindowGivesUp: a record unconfirmed for GiveUp ends the connection
// with GiveUpErr, after being re-sent MaxResends times and no more; the
// queue keeps it.
func TestWindowGivesUp(t *testing.T) {
	clk := newFakeClock()
	giveUp := errors.New("no answer")
	w := uplink.NewWindow(uplink.WindowOpts{Name: "test", Size: 4, ResendAfter: time.Second, MaxResends: 2,
		GiveUp: 10 * time.Second, GiveUpErr: giveUp, Now: clk.Now, NewTicker: clk.newTicker})
	q := uplinktest.NewQueue()
	q.AddN(1, 50)
	in := &instant{ready: true, never: true}
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, q, in.link()) }()
	condtest.WaitFor(t, 20*time.Second, "the first send", func() bool { return len(in.sends()) == 1 })
	var err error
	for err == nil {
		clk.step(time.Second)
		select {
		case err = <-done:
		case <-time.After(time.Millisecond):
		}
	}
	if !errors.Is(err, giveUp) {
		t.Errorf("Run = %v, want it to wrap %v", err, giveUp)
	}
	if s := in.sends(); !slices.Equal(s, []uint64{1, 1, 1}) {
		t.Errorf("sends %v, want the first and MaxResends = 2 re-sends", s)
	}
	if a, _ := q.Acked(); a != 0 || len(q.Acks()) != 0 {
		t.Errorf("acked %d (calls %v) of an unconfirmed record", a, q.Acks())
	}
}

// TestWindowQueueFailure: an outbox that fails is a *QueueError, which a
// transport must not retry.
func TestWindowQueueFailure(t *testing.T) {
	w := uplink.NewWindow(uplink.WindowOpts{Name: "test", Size: 4, FlushEvery: time.Nanosecond})
	q := uplinktest.NewQueue()
	q.AddN(3, 50)
	q.SetAckErr(errors.New("disk full"))
	err := w.Run(context.Background(), q, (&instant{ready: true}).link())
	var qe *uplink.QueueError
	if !errors.As(err, &qe) || !strings.Contains(err.Error(), "test: ack seq 3: disk full") {
		t.Errorf("Run = %v, want a QueueError naming the ack", err)
	}
}

// TestWindowSkipsUndecodable: with receipts, a record that does not decode
// is never sent (no collector would receipt it) and does not hold back the
// acks of the records after it.
func TestWindowSkipsUndecodable(t *testing.T) {
	chain := [16]byte{3}
	recs := signedRecords(t, chain, 3)
	q := uplinktest.NewQueue()
	q.Add(recs[0], []byte("not a record"), recs[2])
	w := uplink.NewWindow(uplink.WindowOpts{Name: "test", Size: 8, MinReceipts: 1, FlushEvery: time.Nanosecond})
	in := &instant{ready: true}
	stop := runWindow(t, w, q, in.link())
	condtest.WaitFor(t, 20*time.Second, "two sends", func() bool { return len(in.sends()) == 2 })
	w.Receive(uplink.Receipt{Collector: "a", Chains: map[[16]byte][][2]uint64{chain: {{1, 1}}}})
	q.WaitAcked(t, 1, 20*time.Second)
	w.Receive(uplink.Receipt{Collector: "a", Chains: map[[16]byte][][2]uint64{chain: {{3, 3}}}})
	q.WaitAcked(t, 3, 20*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if s := in.sends(); !slices.Equal(s, []uint64{1, 3}) {
		t.Errorf("sent %v, want [1 3]", s)
	}
}
