package fleet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/edge-agent/edge-agent/store"
	"github.com/edge-agent/edge-agent/uplink/mqtt"
	"github.com/edge-agent/edge-agent/uplink/p2p"
)

// LoadOpts describe one load run.
type LoadOpts struct {
	Servers     []string // broker URLs
	TopicPrefix string   // "" = edge-agent
	Devices     int
	// Rate is records per second over all devices; Count, when > 0, stops
	// each device after that many records (else Duration ends the run).
	Rate     float64
	Count    int
	Duration time.Duration
	Pad      int // payload padding bytes per record (realistic obs are 50–200 B)
	// Presign signs every record of the run before the clock starts (on
	// all cores), so that during the measured window the generator only
	// queues and ships them: the devices' signing is not part of what a
	// collector setup costs. Records are stamped with the time they were
	// signed. Without it, each record is signed when it is due.
	Presign bool
	// Collectors (peer ids) switch the devices' uplinks to end-to-end
	// receipts; empty = PUBACK.
	Collectors  []string
	MinReceipts int
	Window      int           // per device; 0 = the uplink's default
	ResendAfter time.Duration // 0 = 5s
	// Drain bounds the wait, after the last record is made, for every
	// outbox to empty.
	Drain  time.Duration
	Logger *slog.Logger
	// Uplinks, when set, receives each device's uplink (tests read their
	// status).
	Uplinks func([]*mqtt.Uplink)
	// Started, when set, is called as the clock starts: the devices'
	// uplinks are running and (Presign) every record is signed.
	Started func()
}

// Result is what a run measured.
type Result struct {
	Devices   int
	Records   uint64        // made and queued
	Delivered uint64        // left the outboxes (acked)
	Backlog   uint64        // still queued when the run ended
	Elapsed   time.Duration // first record to last ack
	// Latency from handing a record to the uplink until the ack that let it
	// leave the outbox: the first trusted receipt for it (receipts), or the
	// uplink's PUBACK flush (PUBACK mode, up to 250 ms late).
	P50, P99, Max time.Duration
	Receipts      uint64 // receipts the devices accepted
	Refused       uint64 // receipts the devices refused
	Resent        uint64
}

// Run plays the fleet until every device made its records (or Duration
// passed) and the outboxes drained (or Drain passed), or ctx is done.
func Run(ctx context.Context, o LoadOpts) (Result, error) {
	if o.Devices < 1 || o.Rate <= 0 || (o.Count <= 0 && o.Duration <= 0) {
		return Result{}, errors.New("fleet: need devices >= 1, rate > 0 and a count or a duration")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ResendAfter <= 0 {
		o.ResendAfter = 5 * time.Second
	}
	if o.Drain <= 0 {
		o.Drain = 2 * time.Minute
	}
	lat := &latencies{}
	devs := make([]*Device, o.Devices)
	queues := make([]*memQueue, o.Devices)
	ups := make([]*mqtt.Uplink, o.Devices)
	for i := range devs {
		d, err := NewDevice(rand.Reader)
		if err != nil {
			return Result{}, err
		}
		devs[i], queues[i] = d, newMemQueue(lat, len(o.Collectors) == 0)
		mo := mqtt.DefaultOpts()
		mo.Servers, mo.DeviceID, mo.Logger = o.Servers, d.ID(), o.Logger
		if o.TopicPrefix != "" {
			mo.TopicPrefix = o.TopicPrefix
		}
		if o.Window > 0 {
			mo.Window = o.Window
		}
		mo.BackoffMin, mo.BackoffMax = 200*time.Millisecond, 2*time.Second
		if len(o.Collectors) > 0 {
			q := queues[i]
			mo.Collectors, mo.MinReceipts = o.Collectors, max(o.MinReceipts, 1)
			mo.ResendAfter, mo.ResendMax = o.ResendAfter, 4*o.ResendAfter
			mo.OpenReceipt = func(raw []byte) (*mqtt.Receipt, error) {
				r, err := p2p.OpenMQTTReceipt(raw)
				if err == nil {
					q.receipted(r)
				}
				return r, err
			}
		}
		u, err := mqtt.New(mo)
		if err != nil {
			return Result{}, fmt.Errorf("fleet: device %d uplink: %w", i, err)
		}
		ups[i] = u
	}
	if o.Uplinks != nil {
		o.Uplinks(ups)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i, u := range ups {
		wg.Go(func() {
			if err := u.Run(runCtx, queues[i]); err != nil {
				o.Logger.Error("fleet: uplink stopped", "device", i, "err", err)
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()

	total := uint64(0)
	if o.Count > 0 {
		total = uint64(o.Count * o.Devices)
	}
	var signed [][][]byte // per device, in seq order (Presign)
	if o.Presign {
		n := total
		if n == 0 {
			n = uint64(math.Ceil(o.Rate*o.Duration.Seconds())) + 1
		}
		var err error
		if signed, err = presign(devs, int((n+uint64(o.Devices)-1)/uint64(o.Devices)), o.Pad); err != nil {
			return Result{}, err
		}
	}

	if o.Started != nil {
		o.Started()
	}
	// Make records on a 10 ms tick, round robin, at the chosen rate.
	start := time.Now()
	var made uint64
	next := 0
	perDev := make([]int, o.Devices)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
make:
	for {
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-tick.C:
		}
		el := time.Since(start)
		if o.Count <= 0 && el >= o.Duration {
			break
		}
		due := uint64(o.Rate * el.Seconds())
		for made < due {
			if total > 0 && made >= total {
				break make
			}
			for o.Count > 0 && perDev[next] >= o.Count {
				next = (next + 1) % o.Devices
			}
			var (
				raw []byte
				seq uint64
				err error
			)
			if signed != nil {
				if perDev[next] >= len(signed[next]) {
					break make // Duration's worth made (the tick is late)
				}
				raw, seq = signed[next][perDev[next]], uint64(perDev[next]+1)
			} else if raw, seq, err = devs[next].Next(time.Now(), o.Pad); err != nil {
				return Result{}, err
			}
			queues[next].add(devs[next].Chain(), seq, raw)
			perDev[next]++
			made++
			next = (next + 1) % o.Devices
		}
	}
	// Drain.
	deadline := time.Now().Add(o.Drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		left := uint64(0)
		for _, q := range queues {
			left += q.len()
		}
		if left == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	res := Result{Devices: o.Devices, Records: made}
	for i, q := range queues {
		res.Backlog += q.len()
		st := ups[i].Status()
		res.Receipts += st.Receipts
		res.Refused += st.ReceiptsRefused
		res.Resent += st.Resent
	}
	res.Delivered = made - res.Backlog
	res.Elapsed = lat.last().Sub(start)
	res.P50, res.P99, res.Max = lat.quantiles()
	return res, nil
}

// presign signs per records for every device, spread over the cores.
func presign(devs []*Device, per, pad int) ([][][]byte, error) {
	out := make([][][]byte, len(devs))
	errs := make([]error, len(devs))
	var wg sync.WaitGroup
	work := make(chan int)
	for range runtime.NumCPU() {
		wg.Go(func() {
			for i := range work {
				recs := make([][]byte, 0, per)
				for range per {
					raw, _, err := devs[i].Next(time.Now(), pad)
					if err != nil {
						errs[i] = err
						break
					}
					recs = append(recs, raw)
				}
				out[i] = recs
			}
		})
	}
	for i := range devs {
		work <- i
	}
	close(work)
	wg.Wait()
	return out, errors.Join(errs...)
}

// latencies collects per-record delivery latencies.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
	at time.Time
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.at = time.Now()
	l.mu.Unlock()
}

func (l *latencies) last() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.at
}

func (l *latencies) quantiles() (p50, p99, mx time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*99/100], s[len(s)-1]
}

// memQueue is a device's outbox in memory: an uplink.Queue.
type memQueue struct {
	lat      *latencies
	onAck    bool // PUBACK mode: latency measured at Ack
	mu       sync.Mutex
	recs     []qrec
	acked    uint64
	wake     chan struct{}
	measured map[uint64]bool
}

type qrec struct {
	store.Record
	chain [16]byte
	at    time.Time
}

func newMemQueue(lat *latencies, onAck bool) *memQueue {
	return &memQueue{lat: lat, onAck: onAck, wake: make(chan struct{}), measured: map[uint64]bool{}}
}

func (q *memQueue) add(chain [16]byte, seq uint64, raw []byte) {
	q.mu.Lock()
	q.recs = append(q.recs, qrec{Record: store.Record{Seq: seq, Data: raw}, chain: chain, at: time.Now()})
	close(q.wake)
	q.wake = make(chan struct{})
	q.mu.Unlock()
}

func (q *memQueue) len() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return uint64(len(q.recs))
}

func (q *memQueue) Pending(after uint64, n int) ([]store.Record, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []store.Record
	for _, r := range q.recs {
		if r.Seq > after && len(out) < n {
			out = append(out, r.Record)
		}
	}
	return out, nil
}

func (q *memQueue) Ack(upTo uint64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := 0
	for i < len(q.recs) && q.recs[i].Seq <= upTo {
		if q.onAck {
			q.lat.add(time.Since(q.recs[i].at))
		}
		delete(q.measured, q.recs[i].Seq)
		i++
	}
	q.recs = append(q.recs[:0], q.recs[i:]...)
	q.acked = max(q.acked, upTo)
	return nil
}

func (q *memQueue) Acked() (uint64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.acked, nil
}

func (q *memQueue) Changed() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.wake
}

// receipted measures publish→receipt for the records a receipt covers, once
// each (the first trusted receipt).
func (q *memQueue) receipted(r *mqtt.Receipt) {
	now := time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, rec := range q.recs {
		if q.measured[rec.Seq] {
			continue
		}
		for _, rg := range r.Chains[rec.chain] {
			if rg[0] <= rec.Seq && rec.Seq <= rg[1] {
				q.measured[rec.Seq] = true
				q.lat.add(now.Sub(rec.at))
				break
			}
		}
	}
}
