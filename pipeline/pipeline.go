package pipeline

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/backoff"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/ratelog"
	"github.com/edge-agent/edge-agent/seqrange"
	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/store"
)

// Outbox is what the pipeline needs of the store.
type Outbox interface {
	Head() store.Head
	Append(entries []store.Entry, announced []store.Range) (evicted []store.Range, err error)
	PendingGaps() []store.Range
}

// Opts configures a Pipeline.
type Opts struct {
	Signer      attest.Signer
	Outbox      Outbox
	Version     string        // goes into the agent.boot record
	Boot        attest.Boot   // the agent.boot observation; Version is filled in
	Cert        []byte        // manufacturer certificate (DER): an agent.cert record follows agent.boot
	QueueLen    int           // observations buffered before Emit blocks
	BatchMax    int           // records per group commit
	SignWorkers int           // goroutines signing one batch
	LocationAge time.Duration // freshness limit of the location stamp
	// CommitInterval is the durability window: signed batches are held and
	// committed together once the oldest has waited this long, or at once
	// when BatchMax records are waiting. 0 commits every batch as soon as
	// it is signed.
	CommitInterval time.Duration
	Logger         *slog.Logger
	Now            func() time.Time
	Rand           io.Reader // boot id
	// OnDurable, if set, is called after each commit with the observation
	// times of the committed records and the commit time (bench latency).
	OnDurable func(observed []time.Time, durable time.Time)
	// OnBacklog, if set, is called when a batch is large enough to sign on
	// several cores: observations queued faster than one core signs them
	// (the agent's CPU governor gives it every core).
	OnBacklog func()
	// KernelClock reads the kernel's synchronisation state for the "tq"
	// claim; nil means status.KernelClock.
	KernelClock func() (status.Clock, error)
	// Announce is signed right after the agent.boot record, in its batch
	// (the agent.update records of this start).
	Announce []drivers.Observation

	// CommitMinRecords and CommitIntervalMax stretch the window at low
	// rates, where a commit of a few records writes as many pages as one of
	// hundreds: a window that ends holding fewer than CommitMinRecords
	// records waits for them, but ends at CommitIntervalMax after it opened
	// whatever it holds. 0 (or a max not above CommitInterval) = no stretch.
	CommitMinRecords  int
	CommitIntervalMax time.Duration
}

// Pipeline turns observations into signed, durable records:
//
//	Emit → queue → sequencer (seq, prev, loc, payload) → parallel signing → group commit
//
// The sequencer and the committer are two goroutines joined by a one-batch
// channel, so batch k+1 is signed while batch k is being fsynced. The chain
// stays strict because prev links payloads, which the sequencer builds in
// order; only the signatures are computed in parallel.
//
// Emit may be called from any goroutine until CloseInput; Run drains what was
// accepted before it returns.
type Pipeline struct {
	o        Opts
	in       chan drivers.Observation
	loc      *locationStamp
	clock    *clockQuality
	bootID   [16]byte
	inClosed chan struct{}

	observed, signed, stored atomic.Uint64
	lastProgress             atomic.Int64 // unix ns of the last commit or idle tick
	appendErrors             atomic.Uint64
	lastAppendErr            atomic.Pointer[string]

	// Observations that could not be encoded (dropped) and records stored
	// without the location stamp because the stamp itself would not encode.
	encodeDrops, locDropped atomic.Uint64
	lastEncodeErr           atomic.Pointer[string]
	encodeLog               *ratelog.Limiter

	// readOnlyDisk is set while appends fail with EROFS: after an I/O error
	// the kernel refuses writes though statfs still says read-write.
	readOnlyDisk atomic.Bool

	gapMu    sync.Mutex
	inFlight []store.Range // evicted ranges whose agent.gap record is signed but not yet committed
}

// New checks opts and fills defaults.
func New(o Opts) (*Pipeline, error) {
	if o.Signer == nil || o.Outbox == nil {
		return nil, errors.New("pipeline: pipeline needs a signer and an outbox")
	}
	if o.QueueLen <= 0 {
		o.QueueLen = 1024
	}
	if o.BatchMax <= 0 {
		o.BatchMax = 256
	}
	if o.SignWorkers <= 0 {
		o.SignWorkers = defaultWorkers()
	}
	if o.LocationAge <= 0 {
		o.LocationAge = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	p := &Pipeline{
		o:         o,
		in:        make(chan drivers.Observation, o.QueueLen),
		loc:       newLocationStamp(o.LocationAge, o.Now),
		inClosed:  make(chan struct{}),
		encodeLog: ratelog.New(10*time.Second, 1),
	}
	if o.KernelClock == nil {
		o.KernelClock = status.KernelClock
	}
	p.clock = newClockQuality(o.Now, o.KernelClock)
	if _, err := io.ReadFull(o.Rand, p.bootID[:]); err != nil {
		return nil, fmt.Errorf("pipeline: boot id: %w", err)
	}
	p.lastProgress.Store(o.Now().UnixNano())
	return p, nil
}

// Emit queues one observation; it is a drivers.Emit. It blocks while the
// queue is full, which is how a slow SD card slows the drivers down instead
// of growing memory.
func (p *Pipeline) Emit(ctx context.Context, o drivers.Observation) error {
	select {
	case <-p.inClosed:
		return errors.New("pipeline: pipeline input is closed")
	default:
	}
	select {
	case p.in <- o:
		p.observed.Add(1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// UpdateFix feeds the location stamp and the time quality; it is a
// drivers.FixSink.
func (p *Pipeline) UpdateFix(f drivers.Fix) {
	p.loc.Update(f)
	if f.TimeUnixNano != 0 {
		now := p.o.Now()
		p.clock.noteOffset(f.Time().Sub(now), now)
	}
}

// CloseInput tells Run that no more observations will come: Run commits what
// is queued and returns. Call it only after every driver has returned.
func (p *Pipeline) CloseInput() {
	close(p.inClosed)
	close(p.in)
}

// BootID is this start's random id, carried by every record.
func (p *Pipeline) BootID() [16]byte { return p.bootID }

// Counts reports observations accepted, records signed and records durable.
func (p *Pipeline) Counts() (observed, signed, stored uint64) {
	return p.observed.Load(), p.signed.Load(), p.stored.Load()
}

// Stats is a snapshot of the pipeline for status and metrics.
type Stats struct {
	Observed, Signed, Stored uint64 // accepted by Emit, signed, durable
	AppendErrors             uint64 // store appends that failed and were retried
	LastAppendError          string // "" when none since start
	LastProgress             time.Time
	EncodeDrops              uint64 // observations dropped: they would not encode
	WithoutLocation          uint64 // records stored without a location stamp that would not encode
	LastEncodeError          string
	// ReadOnlyDisk is set while appends fail with EROFS: after an I/O error
	// the kernel refuses writes though statfs still says read-write.
	ReadOnlyDisk bool
	ClockSource  string // the "tq" source records signed now would carry
}

// Stats returns the pipeline's counters and state; safe from any goroutine.
func (p *Pipeline) Stats() Stats {
	s := Stats{AppendErrors: p.appendErrors.Load(), LastAppendError: p.LastAppendError(),
		LastProgress: p.LastProgress(), ReadOnlyDisk: p.readOnlyDisk.Load(),
		ClockSource: p.clock.current().Source}
	s.Observed, s.Signed, s.Stored = p.Counts()
	s.EncodeDrops, s.WithoutLocation, s.LastEncodeError = p.EncodeFailures()
	return s
}

// SignWorkers is how many goroutines sign one large batch.
func (p *Pipeline) SignWorkers() int { return p.o.SignWorkers }

// LastProgress is when the pipeline last committed a batch or found nothing
// to do; a stale value means it is stuck (the systemd watchdog uses it).
func (p *Pipeline) LastProgress() time.Time { return time.Unix(0, p.lastProgress.Load()) }

// LastAppendError is the most recent store failure ("" when none since start).
func (p *Pipeline) LastAppendError() string {
	if s := p.lastAppendErr.Load(); s != nil {
		return *s
	}
	return ""
}

// EncodeFailures reports observations dropped because they could not be
// encoded, records stored without a location stamp that would not encode,
// and the latest such error ("" when none since start).
func (p *Pipeline) EncodeFailures() (dropped, withoutLoc uint64, last string) {
	if s := p.lastEncodeErr.Load(); s != nil {
		last = *s
	}
	return p.encodeDrops.Load(), p.locDropped.Load(), last
}

// encodeFailed counts and reports one encoding failure, logging at most one
// line per interval.
func (p *Pipeline) encodeFailed(counter *atomic.Uint64, msg string, err error) {
	counter.Add(1)
	e := err.Error()
	p.lastEncodeErr.Store(&e)
	if ok, held := p.encodeLog.Allow(p.o.Now()); ok {
		p.o.Logger.Error(msg, "err", err, "similar_lines_suppressed", held)
	}
}

// bootObs says why this boot record starts where it does.
func (p *Pipeline) bootObs() attest.Boot {
	b := p.o.Boot
	b.Version = p.o.Version
	if b.Reason == "" {
		b.Reason = attest.BootStart
		if p.o.Outbox.Head().Seq == 0 {
			b.Reason = attest.BootNewChain
		}
	}
	return b
}

// batch is one group commit on its way from the sequencer to the committer.
type batch struct {
	entries   []store.Entry
	observed  []time.Time
	announced []store.Range
	durable   []func() // the observations' Durable callbacks, called after the commit
}

// Run processes observations until CloseInput has been called and the queue
// is drained, or until ctx is done (then queued observations are dropped:
// they were never reported durable). It starts with an agent.boot record.
func (p *Pipeline) Run(ctx context.Context) error {
	head := p.o.Outbox.Head()
	seq := &sequencer{p: p, chain: head.Chain, seq: head.Seq, prev: head.Hash}

	// Unbuffered: the committer takes batch k as it starts on it, so signing
	// batch k+1 still overlaps the fsync, with one batch less in flight.
	toCommit := make(chan batch)
	commitErr := make(chan error, 1)
	go func() { commitErr <- p.commitLoop(ctx, toCommit) }()

	err := p.sequenceLoop(ctx, seq, toCommit)
	close(toCommit)
	if cerr := <-commitErr; cerr != nil {
		return cerr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if err == nil {
		return p.announceRemainingGaps(ctx, seq)
	}
	return nil
}

// announceRemainingGaps names, before a clean stop, the ranges the last
// batches evicted. Gap records can themselves evict at the quota, so it
// tries a few rounds; whatever is left stays pending in the store and is
// announced at the next start.
func (p *Pipeline) announceRemainingGaps(ctx context.Context, seq *sequencer) error {
	for round := 0; round < 3; round++ {
		b, err := seq.build(nil)
		if err != nil || len(b.entries) == 0 {
			return err
		}
		if err := p.commit(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

// sequenceLoop builds and signs batches as observations come and hands them
// to the committer. With a CommitInterval it holds signed batches and hands
// them over together: when the window that the first of them opened ends
// (or, stretched, when CommitMinRecords wait or CommitIntervalMax ends),
// when BatchMax records wait, or when the input closes. Holding them here
// rather than in the committer wakes the committer once per window instead
// of once per batch. Held records are signed but not durable: no uplink can
// see them (uplinks read only committed records), Counts does not count them
// as stored, and a crash loses them before anyone was told of them.
func (p *Pipeline) sequenceLoop(ctx context.Context, seq *sequencer, out chan<- batch) error {
	boot := drivers.Observation{
		Kind: attest.KindBoot, Source: "agent", Time: p.o.Now(),
		Data: p.bootObs(),
	}
	pending := []drivers.Observation{boot}
	if p.o.Cert != nil {
		pending = append(pending, drivers.Observation{Kind: attest.KindCert, Source: "agent", Time: boot.Time, Data: attest.Cert{DER: p.o.Cert}})
	}
	pending = append(pending, p.o.Announce...)
	idle := time.NewTicker(time.Second)
	defer idle.Stop()
	var (
		held      batch
		window    *time.Timer
		due       <-chan time.Time
		stretched bool // the window outlived CommitInterval, waiting for CommitMinRecords
	)
	defer func() {
		if window != nil {
			window.Stop()
		}
	}()
	handOver := func() error {
		b := held
		held, due, stretched = batch{}, nil, false
		if window != nil {
			window.Stop()
		}
		if len(b.entries) == 0 {
			return nil
		}
		select {
		case out <- b:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		if len(pending) == 0 {
			select {
			case o, ok := <-p.in:
				if !ok {
					return handOver()
				}
				pending = append(pending, o)
			case <-due:
				if stretch := p.o.CommitIntervalMax - p.o.CommitInterval; !stretched && stretch > 0 && len(held.entries) < p.o.CommitMinRecords {
					stretched = true
					window.Reset(stretch)
					continue
				}
				if err := handOver(); err != nil {
					return err
				}
				continue
			case <-idle.C:
				p.lastProgress.Store(p.o.Now().UnixNano())
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		closed := false
	fill:
		for len(pending) < p.o.BatchMax {
			select {
			case o, ok := <-p.in:
				if !ok {
					closed = true
					break fill
				}
				pending = append(pending, o)
			default:
				break fill
			}
		}
		b, err := seq.build(pending)
		if err != nil {
			return err
		}
		pending = pending[:0]
		held.merge(b)
		switch {
		case closed:
			return handOver()
		case len(held.entries) == 0:
		case p.o.CommitInterval <= 0 || len(held.entries) >= p.o.BatchMax,
			stretched && len(held.entries) >= p.o.CommitMinRecords:
			if err := handOver(); err != nil {
				return err
			}
		case due == nil:
			if window == nil {
				window = time.NewTimer(p.o.CommitInterval)
			} else {
				window.Reset(p.o.CommitInterval)
			}
			due = window.C
		}
	}
}

// commitLoop appends batches in order. A failing append (disk full, I/O
// error) is retried with backoff, holding the batch: the records keep their
// seqs, nothing is skipped, and the drivers block on the full queue.
func (p *Pipeline) commitLoop(ctx context.Context, in <-chan batch) error {
	for b := range in {
		if err := p.commit(ctx, b); err != nil {
			if errors.Is(err, context.Canceled) {
				// Stopped mid-retry: the batch was never reported durable,
				// so dropping it and what follows breaks no promise.
				return nil
			}
			return err
		}
	}
	return nil
}

// merge appends b to the held batch.
func (h *batch) merge(b batch) {
	h.entries = append(h.entries, b.entries...)
	h.observed = append(h.observed, b.observed...)
	h.announced = append(h.announced, b.announced...)
	h.durable = append(h.durable, b.durable...)
}

// commit appends one batch, retrying until it is durable or ctx ends.
func (p *Pipeline) commit(ctx context.Context, b batch) error {
	bo := backoff.New(100*time.Millisecond, 30*time.Second, nil) // the wall clock
	for {
		_, err := p.o.Outbox.Append(b.entries, b.announced)
		if err == nil {
			break
		}
		if errors.Is(err, store.ErrNotContiguous) || errors.Is(err, store.ErrClosed) {
			return fmt.Errorf("pipeline: commit records %d-%d: %w", b.entries[0].Seq, b.entries[len(b.entries)-1].Seq, err)
		}
		p.appendErrors.Add(1)
		p.readOnlyDisk.Store(errors.Is(err, syscall.EROFS) || strings.Contains(err.Error(), "read-only file system")) // bbolt does not wrap every error
		msg := err.Error()
		p.lastAppendErr.Store(&msg)
		wait := bo.Next()
		p.o.Logger.Error("cannot store signed records; holding them and retrying",
			"err", err, "records", len(b.entries), "retry_in", wait)
		if err := bo.Wait(ctx, wait); err != nil {
			return err
		}
	}
	p.readOnlyDisk.Store(false)
	now := p.o.Now()
	p.stored.Add(uint64(len(b.entries)))
	p.lastProgress.Store(now.UnixNano())
	if len(b.announced) > 0 {
		p.gapMu.Lock()
		p.inFlight = seqrange.Subtract(p.inFlight, b.announced)
		p.gapMu.Unlock()
	}
	if p.o.OnDurable != nil {
		p.o.OnDurable(b.observed, now)
	}
	for _, f := range b.durable {
		f() // drivers.Observation.Durable: the record is on disk now
	}
	return nil
}

func defaultWorkers() int { return runtime.GOMAXPROCS(0) }

// sequencer owns the chain head while the pipeline runs.
type sequencer struct {
	p     *Pipeline
	chain [16]byte
	seq   uint64
	prev  [32]byte
}

// build gives the observations their place in the chain, announces any
// evicted ranges, and signs the batch on several cores. An observation that
// cannot be encoded (a driver bug) is logged and dropped before it takes a
// seq, so the chain has no hole.
func (s *sequencer) build(obs []drivers.Observation) (batch, error) {
	p := s.p
	gaps := s.newGaps()
	n := len(gaps) + len(obs)
	b := batch{
		entries:   make([]store.Entry, 0, n),
		observed:  make([]time.Time, 0, n),
		announced: gaps,
	}
	payloads := make([][]byte, 0, n)
	now := p.o.Now()
	loc := p.loc.Current()
	tq := p.clock.current()
	add := func(o drivers.Observation) error {
		c := attest.Claims{
			Chain: s.chain, Seq: s.seq + 1, Prev: s.prev,
			Time: now.UnixNano(), Kind: o.Kind, Source: o.Source,
			Obs: o.Data, Boot: p.bootID[:], TQ: tq,
		}
		if o.Kind != drivers.KindGNSSFix { // a fix record carries its own position
			c.Loc = loc
		}
		payload, err := attest.EncodePayload(&c)
		if err != nil && c.Loc != nil {
			// A location stamp that cannot be encoded must not silence
			// every other driver: keep the observation, without the stamp.
			c.Loc = nil
			stampErr := err
			if payload, err = attest.EncodePayload(&c); err == nil {
				p.encodeFailed(&p.locDropped, "storing records without the location stamp, which cannot be encoded",
					fmt.Errorf("pipeline: location stamp for %s record from %s: %w", o.Kind, o.Source, stampErr))
			}
		}
		if err != nil {
			return fmt.Errorf("pipeline: encode %s record from %s: %w", o.Kind, o.Source, err)
		}
		s.seq++
		s.prev = attest.PayloadHash(payload)
		payloads = append(payloads, payload)
		b.entries = append(b.entries, store.Entry{Seq: s.seq, Hash: s.prev})
		b.observed = append(b.observed, o.Time)
		if o.Durable != nil {
			b.durable = append(b.durable, o.Durable)
		}
		return nil
	}
	for _, g := range gaps {
		err := add(drivers.Observation{Kind: attest.KindGap, Source: "agent", Time: now,
			Data: attest.Gap{From: g.From, To: g.To, Reason: "quota"}})
		if err != nil {
			return batch{}, err
		}
	}
	for _, o := range obs {
		if err := add(o); err != nil {
			p.encodeFailed(&p.encodeDrops, "dropping an observation that cannot be encoded", err)
		}
	}
	if err := p.signAll(b.entries, payloads); err != nil {
		return batch{}, err
	}
	p.signed.Add(uint64(len(b.entries)))
	return b, nil
}

// newGaps returns the evicted ranges that no agent.gap record names yet, and
// marks them as in flight.
func (s *sequencer) newGaps() []store.Range {
	pending := s.p.o.Outbox.PendingGaps()
	if len(pending) == 0 {
		return nil
	}
	s.p.gapMu.Lock()
	defer s.p.gapMu.Unlock()
	gaps := seqrange.Subtract(pending, s.p.inFlight)
	s.p.inFlight = append(s.p.inFlight, gaps...)
	return gaps
}

// signParallelMin is the smallest share of a batch worth a goroutine of its
// own. At the rates devices run, batches hold a few records, and handing
// each to another core cost more than the signature (the scheduler's wake-ups
// and a cold cache doubled it): those are signed right here.
const signParallelMin = 32

// signChunk is how many records one batch signature covers (attest.SignPayloads):
// enough to share the costly step of each signature between them (19 µs a
// signature in chunks of 16 here, against 25–28 µs alone), few enough that a
// signer yields to the committer every ~300 µs.
const signChunk = 16

// signAll signs payloads[i] into entries[i].Data, spreading a large batch
// over the configured workers.
func (p *Pipeline) signAll(entries []store.Entry, payloads [][]byte) error {
	if len(entries) >= signParallelMin && p.o.OnBacklog != nil {
		p.o.OnBacklog()
	}
	workers := min(p.o.SignWorkers, len(entries)/signParallelMin)
	if workers <= 1 {
		return signRange(p.o.Signer, entries, payloads, 0, len(entries))
	}
	var wg sync.WaitGroup
	errs := make([]error, workers)
	per := (len(entries) + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*per, min((w+1)*per, len(entries))
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = signRange(p.o.Signer, entries, payloads, lo, hi)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func signRange(s attest.Signer, entries []store.Entry, payloads [][]byte, lo, hi int) error {
	for ; lo < hi; lo += signChunk {
		end := min(lo+signChunk, hi)
		raws, err := attest.SignPayloads(s, payloads[lo:end])
		if err != nil {
			return fmt.Errorf("pipeline: sign records %d–%d: %w", entries[lo].Seq, entries[end-1].Seq, err)
		}
		for i, raw := range raws {
			entries[lo+i].Data = raw
		}
		// Signers fill every P; the committer, back from fdatasync, would
		// wait for a whole batch's signing before it ran again, and commits
		// would take turns with signing instead of overlapping it. Yielding
		// after each chunk lets it in soon.
		runtime.Gosched()
	}
	return nil
}
