package uplink

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/store"
)

// A Window is the delivery loop every acknowledging transport shares (the
// shape of telegraf's RunningOutput): it reads committed records from the
// outbox in seq order, keeps up to Size of them in flight, sends again what
// stays unconfirmed, and acks the queue up to the highest seq below which
// every record is confirmed, at most once per FlushEvery (each Ack is a
// store commit; a crash between flushes only costs duplicates). The
// transport supplies a Link per connection: how to send, and whether a
// record is confirmed — by the transport itself (an MQTT PUBACK) or, with
// MinReceipts set, by signed receipts from trusted collectors passed to
// Receive.
//
// One goroutine calls Run at a time; Receive and Stats are safe from any.
type Window struct {
	o        WindowOpts
	receipts chan Receipt

	// Owned by the goroutine in Run.
	fl      ring
	cov     map[string]map[[16]byte]*SeqSet // collector → chain → receipted seqs
	maxSent uint64                          // highest seq ever sent through this window

	mu sync.Mutex
	st WindowStats
}

// WindowOpts configures a Window.
type WindowOpts struct {
	// Name prefixes the window's errors and log lines: "mqtt", "p2p".
	Name string
	// Size is how many records may be in flight; Batch the most records one
	// outbox read takes (at least Size).
	Size, Batch int
	// ResendAfter is how long a sent record waits for its confirmation
	// before it is sent again; the wait doubles per attempt up to
	// ResendMax. 0 never re-sends within a connection.
	ResendAfter, ResendMax time.Duration
	// MaxResends bounds re-sends of one record per connection; 0 is no bound.
	MaxResends int
	// GiveUp ends the connection when the oldest record in flight has waited
	// this long (0: never); the error wraps GiveUpErr.
	GiveUp    time.Duration
	GiveUpErr error
	// MinReceipts > 0 confirms a record once that many distinct collectors
	// have receipted it (Receive), instead of by Link.Confirmed.
	MinReceipts int
	// FlushEvery is the most often the queue is acked (default 250ms);
	// Tick how often re-sends and GiveUp are checked (default FlushEvery).
	FlushEvery, Tick time.Duration
	Logger           *slog.Logger
	// Now and NewTicker are the clock (default: the wall clock).
	Now       func() time.Time
	NewTicker func(time.Duration) (<-chan time.Time, func())
}

// WindowStats are the window's counters, for a transport's status.
type WindowStats struct {
	Sent      uint64 // first sends on a connection
	Resent    uint64 // of those, records sent before on an earlier one
	Retried   uint64 // sends again on the same connection, unconfirmed after ResendAfter
	Confirmed uint64 // records confirmed (PUBACKed, receipted enough, or skipped)
	Receipts  uint64 // receipts taken into the coverage
	AckedSeq  uint64 // highest seq acked in the queue
	InFlight  int    // sent, not yet confirmed
	Backlog   uint64 // in flight plus read from the outbox and waiting
	// StalledSeq is the oldest record in flight past ResendAfter (0: none),
	// first sent at StalledSince.
	StalledSeq   uint64
	StalledSince time.Time
}

// Receipt is what one trusted collector says it holds durably. A transport
// passes it to Receive after checking signature, device and collector.
type Receipt struct {
	Collector string
	Chains    map[[16]byte][][2]uint64 // chain id → inclusive seq ranges
}

// Flight is one record on its way: sent, not yet confirmed.
type Flight struct {
	Seq    uint64
	Data   []byte
	Chain  [16]byte  // with MinReceipts only: the record's chain
	Tries  int       // sends on this connection, the first included
	First  time.Time // the first send on this connection
	Last   time.Time // the latest send
	Handle any       // the transport's own, e.g. its publish token
	skip   bool      // undecodable with MinReceipts: confirmed without sending
}

// Link is one connection of a transport, as the window uses it. Send and
// Confirmed run on the goroutine in Run.
type Link struct {
	// Send sends fs, oldest first: first sends (Tries 1) or re-sends
	// (Tries > 1), never both in one call. An error ends the connection.
	Send func(fs []*Flight) error
	// Confirmed reports whether the far side holds f durably; an error ends
	// the connection. Unused with MinReceipts.
	Confirmed func(f *Flight) (bool, error)
	// Wake, if set, returns a channel ready once head's Confirmed may have
	// changed.
	Wake func(head *Flight) <-chan struct{}
	// Lost delivers why the connection ended (nil: it does not end).
	Lost <-chan error
	// Ready, if set, says whether records may go out now.
	Ready func() bool
	// Drain, if set, runs once ctx is done, before the last confirmations
	// are taken and acked: time for the far side to answer.
	Drain func()
}

// QueueError marks a failure of the outbox rather than of the link:
// reconnecting cannot fix it.
type QueueError struct{ Err error }

func (e *QueueError) Error() string { return e.Err.Error() }
func (e *QueueError) Unwrap() error { return e.Err }

// NewWindow returns a Window; Size must be positive.
func NewWindow(o WindowOpts) *Window {
	o.Size = max(o.Size, 1)
	o.Batch = max(o.Batch, o.Size)
	o.ResendMax = max(o.ResendMax, o.ResendAfter)
	if o.FlushEvery <= 0 {
		o.FlushEvery = 250 * time.Millisecond
	}
	if o.Tick <= 0 {
		o.Tick = o.FlushEvery
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewTicker == nil {
		o.NewTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	return &Window{o: o, receipts: make(chan Receipt, 1024), cov: map[string]map[[16]byte]*SeqSet{},
		fl: ring{buf: make([]Flight, o.Size)}}
}

// Receive hands a checked receipt to the window. It never blocks: when the
// window is behind it drops the receipt and reports false, which only delays
// the ack until the records are re-sent and receipted again.
func (w *Window) Receive(r Receipt) bool {
	select {
	case w.receipts <- r:
		return true
	default:
		return false
	}
}

// Stats returns a snapshot of the counters.
func (w *Window) Stats() WindowStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st
}

func (w *Window) update(f func(*WindowStats)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(&w.st)
}

// Covered reports whether collector has receipted f. Only for Link.Send,
// which runs on Run's goroutine (a transport re-sending straight to the
// collectors that miss a record).
func (w *Window) Covered(collector string, f *Flight) bool {
	s := w.cov[collector][f.Chain]
	return s != nil && s.Has(f.Seq)
}

// count is how many collectors have receipted f.
func (w *Window) count(f *Flight) int {
	n := 0
	for _, chains := range w.cov {
		if s := chains[f.Chain]; s != nil && s.Has(f.Seq) {
			n++
		}
	}
	return n
}

func (w *Window) confirmed(l *Link, f *Flight) (bool, error) {
	if f.skip {
		return true, nil
	}
	if w.o.MinReceipts > 0 {
		return w.count(f) >= w.o.MinReceipts, nil
	}
	return l.Confirmed(f)
}

func (w *Window) apply(r Receipt) {
	chains := w.cov[r.Collector]
	if chains == nil {
		chains = map[[16]byte]*SeqSet{}
		w.cov[r.Collector] = chains
	}
	for ch, rs := range r.Chains {
		if chains[ch] == nil {
			chains[ch] = &SeqSet{}
		}
		chains[ch].Add(rs)
	}
	w.update(func(s *WindowStats) { s.Receipts++ })
}

// forget drops coverage at or below seq, which the queue holds as acked.
func (w *Window) forget(seq uint64) {
	for _, chains := range w.cov {
		for ch, s := range chains {
			if s.Forget(seq); len(s.Ranges()) == 0 {
				delete(chains, ch)
			}
		}
	}
}

// session is the state of one Run.
type session struct {
	w                  *Window
	q                  Queue
	l                  *Link
	buf                []store.Record
	sent, done, stored uint64 // highest seq sent, confirmed below, acked in q
	lastFlush          time.Time
	batch              []*Flight
}

// Run delivers q over l until ctx is done (nil, or a queue error from the
// final ack), l is lost, Send or Confirmed fails, or GiveUp passes. Queue
// failures are *QueueError. Whatever was in flight is sent again by the next
// Run, from the queue's ack mark.
func (w *Window) Run(ctx context.Context, q Queue, l Link) error {
	acked, err := q.Acked()
	if err != nil {
		return &QueueError{fmt.Errorf("%s: read ack mark: %w", w.o.Name, err)}
	}
	w.forget(acked)
	s := &session{w: w, q: q, l: &l, sent: acked, done: acked, stored: acked, lastFlush: w.o.Now()}
	tick, stop := w.o.NewTicker(w.o.Tick)
	defer func() {
		stop()
		w.fl.reset()
		w.update(func(st *WindowStats) { st.InFlight, st.Backlog, st.StalledSeq, st.StalledSince = 0, 0, 0, time.Time{} })
	}()
	for {
		// Reap first: a confirmation just in makes room for the fill.
		if err := s.reap(); err != nil {
			return s.end(err)
		}
		if w.o.Now().Sub(s.lastFlush) >= w.o.FlushEvery {
			if err := s.flush(); err != nil {
				return err
			}
		}
		changed, err := s.fill()
		if err != nil {
			return s.end(err)
		}
		w.update(func(st *WindowStats) {
			st.InFlight, st.Backlog = w.fl.n, uint64(w.fl.n)+uint64(len(s.buf))
		})
		var wake <-chan struct{}
		if w.fl.n > 0 && l.Wake != nil {
			wake = l.Wake(w.fl.head())
		}
		select {
		case <-ctx.Done():
			if l.Drain != nil {
				l.Drain()
			}
			_ = s.reap()
			return s.flush()
		case err := <-l.Lost:
			return s.end(fmt.Errorf("%s: %w", w.o.Name, err))
		case r := <-w.receipts:
			w.apply(r)
			// Take every receipt already waiting before reaping once.
			for more := true; more; {
				select {
				case r := <-w.receipts:
					w.apply(r)
				default:
					more = false
				}
			}
		case <-wake:
		case <-changed:
		case <-tick:
			if err := s.resend(); err != nil {
				return s.end(err)
			}
			if err := s.flush(); err != nil {
				return err
			}
		}
	}
}

// end takes what is confirmed into the queue on the way out, so a lost
// link does not cost the acks of the last FlushEvery; err is why the link
// ended, unless the queue failed too.
func (s *session) end(err error) error {
	_ = s.reap()
	if ferr := s.flush(); ferr != nil {
		return ferr
	}
	return err
}

// reap pops every confirmed record at the head of the window.
func (s *session) reap() error {
	w := s.w
	n := uint64(0)
	defer func() {
		if n > 0 {
			w.forget(s.done)
			w.update(func(st *WindowStats) { st.Confirmed += n; st.InFlight = w.fl.n })
		}
	}()
	for w.fl.n > 0 {
		f := w.fl.head()
		ok, err := w.confirmed(s.l, f)
		if err != nil {
			return fmt.Errorf("%s: %w", w.o.Name, err)
		}
		if !ok {
			return nil
		}
		s.done = f.Seq
		w.fl.pop()
		n++
	}
	return nil
}

// flush acks the queue up to done, if it moved.
func (s *session) flush() error {
	if s.done == s.stored {
		return nil
	}
	if err := s.q.Ack(s.done); err != nil {
		return &QueueError{fmt.Errorf("%s: ack seq %d: %w", s.w.o.Name, s.done, err)}
	}
	s.stored, s.lastFlush = s.done, s.w.o.Now()
	done := s.done
	s.w.update(func(st *WindowStats) { st.AckedSeq = done })
	return nil
}

// fill reads the outbox into the free part of the window and sends what it
// read. It returns the queue's Changed channel when the outbox ran dry, so
// Run wakes on the next append.
func (s *session) fill() (<-chan struct{}, error) {
	w := s.w
	if s.l.Ready != nil && !s.l.Ready() {
		return nil, nil
	}
	var changed <-chan struct{}
	s.batch = s.batch[:0]
	for w.fl.n < len(w.fl.buf) {
		if len(s.buf) == 0 {
			// Changed before Pending: an append between the two still
			// wakes us.
			changed = s.q.Changed()
			var err error
			if s.buf, err = s.q.Pending(s.sent, w.o.Batch); err != nil {
				return nil, &QueueError{fmt.Errorf("%s: read pending records after seq %d: %w", w.o.Name, s.sent, err)}
			}
			if len(s.buf) == 0 {
				s.buf = nil // let the batch's backing array go
				break
			}
			changed = nil
		}
		rec := s.buf[0]
		s.buf = s.buf[1:]
		s.sent = rec.Seq
		f := w.fl.push(Flight{Seq: rec.Seq, Data: rec.Data})
		if w.o.MinReceipts > 0 {
			r, err := attest.Decode(rec.Data)
			if err != nil {
				// No collector would receipt it; holding it would stall the
				// outbox for good. Say so loudly and count it as delivered.
				w.o.Logger.Error(w.o.Name+": outbox record does not decode; not publishing it", "seq", rec.Seq, "err", err)
				f.skip = true
				continue
			}
			f.Chain = r.Claims.Chain
		}
		s.batch = append(s.batch, f)
	}
	if len(s.batch) == 0 {
		return changed, nil
	}
	now := w.o.Now()
	var resent uint64
	for _, f := range s.batch {
		f.Tries, f.First, f.Last = 1, now, now
		if f.Seq <= w.maxSent {
			resent++
		}
		w.maxSent = max(w.maxSent, f.Seq)
	}
	n := uint64(len(s.batch))
	w.update(func(st *WindowStats) { st.Sent += n; st.Resent += resent })
	err := s.l.Send(s.batch)
	clear(s.batch)
	return changed, err
}

// resend sends again what has waited its turn unconfirmed, notes the oldest
// stall, and ends the link when GiveUp has passed for the head.
func (s *session) resend() error {
	w := s.w
	if err := s.reap(); err != nil {
		return err
	}
	if w.fl.n == 0 {
		w.update(func(st *WindowStats) { st.StalledSeq, st.StalledSince = 0, time.Time{} })
		return nil
	}
	now := w.o.Now()
	if head := w.fl.head(); w.o.GiveUp > 0 && now.Sub(head.First) > w.o.GiveUp {
		return fmt.Errorf("%s: no confirmation of seq %d in %v: %w", w.o.Name, head.Seq, w.o.GiveUp, w.o.GiveUpErr)
	}
	if w.o.ResendAfter <= 0 || (s.l.Ready != nil && !s.l.Ready()) {
		return nil
	}
	var stalled *Flight
	s.batch = s.batch[:0]
	for i := range w.fl.n {
		f := w.fl.at(i)
		if now.Sub(f.Last) < w.delay(f.Tries) {
			continue
		}
		if ok, err := w.confirmed(s.l, f); ok || err != nil {
			continue // an error ends the link once it reaches the head
		}
		if stalled == nil {
			stalled = f
		}
		if w.o.MaxResends > 0 && f.Tries > w.o.MaxResends {
			continue
		}
		f.Tries++
		f.Last = now
		s.batch = append(s.batch, f)
	}
	w.update(func(st *WindowStats) {
		st.StalledSeq, st.StalledSince = 0, time.Time{}
		if stalled != nil {
			st.StalledSeq, st.StalledSince = stalled.Seq, stalled.First
		}
		st.Retried += uint64(len(s.batch))
	})
	if len(s.batch) == 0 {
		return nil
	}
	err := s.l.Send(s.batch)
	clear(s.batch)
	return err
}

// delay is ResendAfter doubled per earlier attempt, capped at ResendMax.
func (w *Window) delay(tries int) time.Duration {
	d := w.o.ResendAfter
	for i := 1; i < tries && d < w.o.ResendMax; i++ {
		d *= 2
	}
	return min(d, w.o.ResendMax)
}

// ring is a fixed-size FIFO of flights: the window never reallocates, and
// a *Flight stays valid until it is popped.
type ring struct {
	buf      []Flight
	start, n int
}

func (r *ring) head() *Flight    { return &r.buf[r.start] }
func (r *ring) at(i int) *Flight { return &r.buf[(r.start+i)%len(r.buf)] }

func (r *ring) push(f Flight) *Flight {
	p := r.at(r.n)
	*p = f
	r.n++
	return p
}

func (r *ring) pop() {
	r.buf[r.start] = Flight{} // drop the handle and its payload
	r.start = (r.start + 1) % len(r.buf)
	r.n--
}

func (r *ring) reset() {
	clear(r.buf)
	r.start, r.n = 0, 0
}
