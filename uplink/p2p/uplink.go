package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/store"
	"github.com/edge-agent/edge-agent/uplink"
)

var _ uplink.Uplink = (*Uplink)(nil)

// Opts configures the agent's Uplink. Start from DefaultOpts.
type Opts struct {
	Signer    attest.Signer // the device key; also the host identity
	Network   string
	Listen    []string // "" none: a device only dials out
	Bootstrap []string // multiaddrs with /p2p/<id>
	// Collectors are the peer ids whose receipts count.
	Collectors []string
	// MinReceipts is how many distinct trusted collectors must receipt a
	// record before the outbox may drop it; 1..len(Collectors).
	MinReceipts int
	// Window bounds records published but not yet receipted enough.
	Window int
	// ResendAfter is the first wait before a record without enough receipts
	// is sent again, straight to the collectors missing it when connected
	// (gossip would drop a repeat it has seen within SeenTTL plus up to a
	// minute); it doubles per attempt up to ResendMax.
	ResendAfter, ResendMax time.Duration
	SeenTTL                time.Duration
	MaxPeers               int
	MaxClockSkew           time.Duration // records from peers stamped further ahead are not relayed
	BackoffMin, BackoffMax time.Duration // bootstrap redial
	Logger                 *slog.Logger
	Now                    func() time.Time
}

// DefaultOpts: network "mainnet", 1 receipt, 256 records in flight,
// re-send after 30s up to 10m, 30s seen cache, 32 peers, 10m clock skew.
func DefaultOpts() Opts {
	return Opts{
		Network:      "mainnet",
		MinReceipts:  1,
		Window:       256,
		ResendAfter:  30 * time.Second,
		ResendMax:    10 * time.Minute,
		SeenTTL:      30 * time.Second,
		MaxPeers:     32,
		MaxClockSkew: 10 * time.Minute,
	}
}

// Status is a snapshot for `edge-agent status` and doctor.
type Status struct {
	PeerID            string            `json:"peer_id"`
	Peers             int               `json:"peers"`       // connected
	TopicPeers        int               `json:"topic_peers"` // subscribed to the record topic
	MeshPeers         int               `json:"mesh_peers"`  // forwarded to
	Bootstrap         []BootstrapStatus `json:"bootstrap"`
	LastReceipt       time.Time         `json:"last_receipt,omitzero"`
	LastReceiptBy     string            `json:"last_receipt_by,omitempty"`
	InFlight          int               `json:"in_flight"`
	Backlog           uint64            `json:"backlog"` // published or waiting, not yet acked
	AckedSeq          uint64            `json:"acked_seq"`
	Published         uint64            `json:"published"`
	Resent            uint64            `json:"resent"`
	LastError         string            `json:"last_error,omitempty"`
	LastErrorAt       time.Time         `json:"last_error_at,omitzero"`
	RejectedFromPeers uint64            `json:"rejected_from_peers"`
}

// Uplink ships the outbox over gossipsub and acks records once MinReceipts
// trusted collectors have receipted them. Create it with New.
type Uplink struct {
	o          Opts
	log        *slog.Logger
	collectors map[peer.ID]bool
	receipts   chan *Receipt

	mu   sync.Mutex
	st   Status
	node *Node
}

// New checks o and returns an Uplink ready to Run.
func New(o Opts) (*Uplink, error) {
	if o.Signer == nil {
		return nil, fmt.Errorf("p2p: no signer: %w", ErrInvalidConfig)
	}
	if len(o.Collectors) == 0 {
		return nil, fmt.Errorf("p2p: collectors: name at least one trusted collector peer id: %w", ErrInvalidConfig)
	}
	cs := make(map[peer.ID]bool)
	for _, s := range o.Collectors {
		id, err := peer.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("p2p: collectors: %q is not a peer id: %w: %w", s, ErrInvalidConfig, err)
		}
		cs[id] = true
	}
	if o.MinReceipts < 1 || o.MinReceipts > len(cs) {
		return nil, fmt.Errorf("p2p: min_receipts %d: want 1..%d (the number of collectors): %w", o.MinReceipts, len(cs), ErrInvalidConfig)
	}
	if o.Window <= 0 {
		return nil, fmt.Errorf("p2p: window %d must be positive: %w", o.Window, ErrInvalidConfig)
	}
	if o.SeenTTL <= 0 || o.ResendAfter <= 0 {
		return nil, fmt.Errorf("p2p: seen_ttl %v and resend_after %v must be positive: %w", o.SeenTTL, o.ResendAfter, ErrInvalidConfig)
	}
	o.ResendMax = max(o.ResendMax, o.ResendAfter)
	if _, err := HostKey(o.Signer); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	u := &Uplink{
		o:          o,
		log:        o.Logger.With("component", "uplink/p2p"),
		collectors: cs,
		receipts:   make(chan *Receipt, 256),
	}
	u.st.PeerID = o.Signer.DeviceID()
	return u, nil
}

// Name is the uplink's key in the store's acknowledgement table.
func (u *Uplink) Name() string { return "p2p" }

// Status returns a snapshot; safe to call concurrently with Run.
func (u *Uplink) Status() Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	st := u.st
	if n := u.node; n != nil {
		st.Peers = len(n.Peers())
		st.TopicPeers = len(n.RecordPeers())
		st.MeshPeers = len(n.MeshPeers())
		st.Bootstrap = n.Bootstrap()
		_, _, st.RejectedFromPeers, _ = n.ValidationCounts()
	}
	return st
}

func (u *Uplink) update(f func(*Status)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f(&u.st)
}

// Run starts the node, publishes what the queue holds beyond its ack mark,
// and keeps going until ctx is done (a clean exit, nil). It returns an error
// only when the queue fails or the host cannot start.
func (u *Uplink) Run(ctx context.Context, q uplink.Queue) error {
	key, err := HostKey(u.o.Signer)
	if err != nil {
		return err
	}
	n, err := NewNode(NodeOpts{
		Key:        key,
		Network:    u.o.Network,
		Listen:     u.o.Listen,
		Bootstrap:  u.o.Bootstrap,
		MaxPeers:   u.o.MaxPeers,
		Memory:     32 << 20,
		Checker:    Checker{MaxClockSkew: u.o.MaxClockSkew, Now: u.o.Now},
		SeenTTL:    u.o.SeenTTL,
		BackoffMin: u.o.BackoffMin,
		BackoffMax: u.o.BackoffMax,
		OnReceipt:  u.onReceipt,
		Logger:     u.log,
		Now:        u.o.Now,
	})
	if err != nil {
		return fmt.Errorf("p2p: start node: %w", err)
	}
	u.mu.Lock()
	u.node = n
	u.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = n.Run(ctx) })
	err = u.pump(ctx, q, n)
	cancel()
	wg.Wait()
	u.mu.Lock()
	u.node = nil
	u.mu.Unlock()
	if ctx.Err() != nil && err == nil {
		return nil
	}
	return err
}

// onReceipt runs on the node's receipt goroutine: it filters and passes
// receipts to the pump without blocking gossip for long.
func (u *Uplink) onReceipt(r *Receipt) {
	if r.Device != u.o.Signer.DeviceID() || !u.collectors[r.Collector] {
		return
	}
	select {
	case u.receipts <- r:
	default:
		// The pump is behind (or gone): a dropped receipt only delays the
		// ack until the record is re-published and receipted again.
		u.log.Debug("p2p: receipt dropped, pump busy", "collector", r.Collector)
	}
}

// flight is one record published and not yet receipted enough.
type flight struct {
	seq    uint64
	chain  [16]byte
	data   []byte
	sentAt time.Time
	tries  int
}

const (
	ackFlushEvery = 250 * time.Millisecond
	tickEvery     = 250 * time.Millisecond
)

// pump publishes in seq order with up to Window in flight, re-publishes
// stale flights, and acks the queue up to the highest seq below which every
// record has MinReceipts receipts.
func (u *Uplink) pump(ctx context.Context, q uplink.Queue, n *Node) error {
	acked, err := q.Acked()
	if err != nil {
		return fmt.Errorf("p2p: read ack mark: %w", err)
	}
	var (
		fl        []flight // seq ascending
		buf       []store.Record
		sent      = acked
		done      = acked
		stored    = acked
		cov       = map[peer.ID]*coverage{}
		lastFlush = time.Now()
		maxSent   uint64
		heard     time.Time // since when the record topic has had peers
	)
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	batch := max(u.o.Window, 64)

	count := func(f *flight) int {
		c := 0
		for _, cv := range cov {
			if sameChain(cv.chain, f.chain) && cv.Has(f.seq) {
				c++
			}
		}
		return c
	}
	reap := func() {
		i := 0
		for i < len(fl) && count(&fl[i]) >= u.o.MinReceipts {
			done = fl[i].seq
			i++
		}
		if i > 0 {
			fl = append(fl[:0], fl[i:]...)
			for _, cv := range cov {
				cv.Forget(done)
			}
		}
	}
	flush := func() error {
		if done == stored {
			return nil
		}
		if err := q.Ack(done); err != nil {
			return fmt.Errorf("p2p: ack seq %d: %w", done, err)
		}
		stored, lastFlush = done, time.Now()
		u.update(func(s *Status) { s.AckedSeq = done })
		return nil
	}
	publish := func(f *flight) {
		if err := n.PublishRecord(ctx, f.data); err != nil && ctx.Err() == nil {
			now := u.o.Now()
			u.update(func(s *Status) { s.LastError, s.LastErrorAt = err.Error(), now })
			u.log.Warn("p2p: publish failed; will retry", "seq", f.seq, "err", err)
		}
		f.sentAt = time.Now()
		f.tries++
		u.update(func(s *Status) {
			s.Published++
			if f.seq <= maxSent {
				s.Resent++
			}
		})
		maxSent = max(maxSent, f.seq)
	}

	for {
		reap()
		if time.Since(lastFlush) >= ackFlushEvery {
			if err := flush(); err != nil {
				return err
			}
		}
		// Publish only with someone to hear it and a way back for the
		// receipt: a record sent into an empty topic waits a whole
		// ResendAfter for its next chance, and so does one whose receipt a
		// collector publishes before its receipt-topic mesh has formed (a
		// standard gossipsub sends its own messages to mesh peers only, and
		// the mesh is grafted a heartbeat after a peer subscribes). Our
		// GRAFT or theirs puts the peer in our receipt mesh; either way it
		// is in theirs before our record arrives on the same stream. A peer
		// that only listens to records has no receipt mesh to wait for, and
		// none is waited for longer than meshWait.
		var changed <-chan struct{}
		if u.canPublish(n, &heard) {
			for len(fl) < u.o.Window {
				if len(buf) == 0 {
					changed = q.Changed()
					if buf, err = q.Pending(sent, batch); err != nil {
						return fmt.Errorf("p2p: read pending records after seq %d: %w", sent, err)
					}
					if len(buf) == 0 {
						break
					}
					changed = nil
				}
				rec := buf[0]
				buf = buf[1:]
				sent = rec.Seq
				r, err := attest.Decode(rec.Data)
				if err != nil {
					// Not ours to judge the outbox; peers would reject it and
					// lower our score. Skip it, and say so loudly.
					u.log.Error("p2p: outbox record does not decode; not publishing it", "seq", rec.Seq, "err", err)
					continue
				}
				fl = append(fl, flight{seq: rec.Seq, chain: r.Claims.Chain, data: rec.Data})
				publish(&fl[len(fl)-1])
			}
			if len(buf) == 0 {
				buf = nil
			}
			u.resend(ctx, n, fl, cov, publish)
		}
		u.update(func(s *Status) {
			s.InFlight = len(fl)
			s.Backlog = uint64(len(fl)) + uint64(len(buf))
		})

		select {
		case <-ctx.Done():
			reap()
			return errors.Join(flush())
		case r := <-u.receipts:
			u.apply(cov, r)
			// Take every receipt already waiting before reaping once.
			for more := true; more; {
				select {
				case r := <-u.receipts:
					u.apply(cov, r)
				default:
					more = false
				}
			}
		case <-changed:
		case <-tick.C:
		}
	}
}

// meshWait bounds how long publishing waits for a receipt-topic mesh once
// the record topic has peers: a few gossipsub heartbeats (1s each).
const meshWait = 3 * time.Second

// canPublish says whether records may go out now (see pump); heard keeps
// when the record topic last went from no peers to some.
func (u *Uplink) canPublish(n *Node, heard *time.Time) bool {
	if len(n.RecordPeers()) == 0 {
		*heard = time.Time{}
		return false
	}
	if heard.IsZero() {
		*heard = time.Now()
	}
	return len(n.rcptT.ListPeers()) == 0 || len(n.mesh.peers(ReceiptTopic(u.o.Network))) > 0 || time.Since(*heard) >= meshWait
}

// resend repairs flights whose back-off expired and that still lack
// receipts: straight to each trusted collector that has not receipted them,
// is connected and speaks DirectProtocol (gossip would drop the same bytes
// as already seen), and over gossip when no such collector is connected. A
// collector built on a standard libp2p stack does not speak DirectProtocol
// and gets its repeats over gossip, once the seen caches forget them.
func (u *Uplink) resend(ctx context.Context, n *Node, fl []flight, cov map[peer.ID]*coverage, publish func(*flight)) {
	now := time.Now()
	direct := map[peer.ID][][]byte{}
	for i := range fl {
		f := &fl[i]
		if now.Sub(f.sentAt) < u.resendDelay(f.tries) {
			continue
		}
		have, sent := 0, false
		for c := range u.collectors {
			if cv := cov[c]; cv != nil && sameChain(cv.chain, f.chain) && cv.Has(f.seq) {
				have++
				continue
			}
			if n.Host().Network().Connectedness(c) == network.Connected && n.speaksDirect(c) {
				direct[c] = append(direct[c], f.data)
				sent = true
			}
		}
		if have >= u.o.MinReceipts {
			continue
		}
		if sent {
			f.sentAt = now
			f.tries++
			u.update(func(s *Status) { s.Resent++ })
		} else {
			publish(f)
		}
	}
	for c, recs := range direct {
		if err := n.SendDirect(ctx, c, recs); err != nil && ctx.Err() == nil {
			now := u.o.Now()
			u.update(func(s *Status) { s.LastError, s.LastErrorAt = err.Error(), now })
			u.log.Warn("p2p: direct re-send failed; will retry", "collector", c, "records", len(recs), "err", err)
		}
	}
}

func (u *Uplink) apply(cov map[peer.ID]*coverage, r *Receipt) {
	for _, c := range r.Chains {
		cv := cov[r.Collector]
		if cv == nil || !sameChain(cv.chain, c.Chain) {
			// A new chain (the outbox was replaced) starts a new coverage:
			// seqs of different chains never mix.
			cv = &coverage{chain: c.Chain}
			cov[r.Collector] = cv
		}
		cv.Add(c.Ranges)
	}
	now := u.o.Now()
	u.update(func(s *Status) { s.LastReceipt, s.LastReceiptBy = now, r.Collector.String() })
}

func (u *Uplink) resendDelay(tries int) time.Duration {
	d := u.o.ResendAfter
	for i := 1; i < tries && d < u.o.ResendMax; i++ {
		d *= 2
	}
	return min(d, u.o.ResendMax)
}
