package p2p

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/edge-agent/edge-agent/attest"
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
	w          *uplink.Window

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
	}
	u.w = uplink.NewWindow(uplink.WindowOpts{Name: "p2p", Size: o.Window, Batch: max(o.Window, 64),
		MinReceipts: o.MinReceipts, ResendAfter: o.ResendAfter, ResendMax: o.ResendMax, Logger: u.log})
	u.st.PeerID = o.Signer.DeviceID()
	return u, nil
}

// Name is the uplink's key in the store's acknowledgement table.
func (u *Uplink) Name() string { return "p2p" }

// Status returns a snapshot; safe to call concurrently with Run.
func (u *Uplink) Status() Status {
	ws := u.w.Stats()
	u.mu.Lock()
	defer u.mu.Unlock()
	st := u.st
	st.InFlight, st.Backlog, st.AckedSeq = ws.InFlight, ws.Backlog, ws.AckedSeq
	st.Published, st.Resent = ws.Sent+ws.Retried, ws.Resent+ws.Retried
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
	err = u.deliver(ctx, q, n)
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
// receipts to the delivery window without blocking gossip for long.
func (u *Uplink) onReceipt(r *Receipt) {
	if r.Device != u.o.Signer.DeviceID() || !u.collectors[r.Collector] {
		return
	}
	wr := uplink.Receipt{Collector: string(r.Collector), Chains: make(map[[16]byte][][2]uint64, len(r.Chains))}
	for _, c := range r.Chains {
		wr.Chains[c.Chain] = append(wr.Chains[c.Chain], c.Ranges...)
	}
	if !u.w.Receive(wr) {
		// The window is behind: a dropped receipt only delays the ack
		// until the record is re-published and receipted again.
		u.log.Debug("p2p: receipt dropped, window busy", "collector", r.Collector)
		return
	}
	now := u.o.Now()
	u.update(func(s *Status) { s.LastReceipt, s.LastReceiptBy = now, r.Collector.String() })
}

// deliver runs the delivery window over the node: records go out over
// gossip, are confirmed by MinReceipts trusted collectors' receipts, and
// what stays unreceipted after ResendAfter (doubling to ResendMax) goes
// again (see resend).
func (u *Uplink) deliver(ctx context.Context, q uplink.Queue, n *Node) error {
	var heard time.Time // since when the record topic has had peers
	return u.w.Run(ctx, q, uplink.Link{
		Send: func(fs []*uplink.Flight) error {
			if fs[0].Tries > 1 {
				u.resend(ctx, n, fs, u.w.Covered, func(f *uplink.Flight) { u.publish(ctx, n, f) })
				return nil
			}
			for _, f := range fs {
				u.publish(ctx, n, f)
			}
			return nil
		},
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
		Ready: func() bool { return u.canPublish(n, &heard) },
	})
}

// publish sends f over gossip; a failure is logged and the record waits
// for its re-send.
func (u *Uplink) publish(ctx context.Context, n *Node, f *uplink.Flight) {
	if err := n.PublishRecord(ctx, f.Data); err != nil && ctx.Err() == nil {
		now := u.o.Now()
		u.update(func(s *Status) { s.LastError, s.LastErrorAt = err.Error(), now })
		u.log.Warn("p2p: publish failed; will retry", "seq", f.Seq, "err", err)
	}
}

// meshWait bounds how long publishing waits for a receipt-topic mesh once
// the record topic has peers: a few gossipsub heartbeats (1s each).
const meshWait = 3 * time.Second

// canPublish says whether records may go out now (see deliver); heard keeps
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
// receipts: straight to each trusted collector that has not receipted them
// (covered), is connected and speaks DirectProtocol (gossip would drop the
// same bytes as already seen), and over gossip when no such collector is
// connected. A collector built on a standard libp2p stack does not speak
// DirectProtocol and gets its repeats over gossip, once the seen caches
// forget them.
func (u *Uplink) resend(ctx context.Context, n *Node, fs []*uplink.Flight, covered func(string, *uplink.Flight) bool, gossip func(*uplink.Flight)) {
	direct := map[peer.ID][][]byte{}
	for _, f := range fs {
		sent := false
		for c := range u.collectors {
			if covered(string(c), f) {
				continue
			}
			if n.Host().Network().Connectedness(c) == network.Connected && n.speaksDirect(c) {
				direct[c] = append(direct[c], f.Data)
				sent = true
			}
		}
		if !sent {
			gossip(f)
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
