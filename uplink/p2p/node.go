package p2p

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/backoff"
)

// RecordTopic is the gossipsub topic that carries records of network.
func RecordTopic(network string) string { return "edge-agent/" + network + "/att/1" }

// ReceiptTopic is the gossipsub topic that carries collector receipts.
func ReceiptTopic(network string) string { return "edge-agent/" + network + "/rcpt/1" }

// MessageID is the gossip message id of data: its SHA-256. A record has one
// id however many peers publish or forward it, so the network carries each
// record once per seen-cache period.
func MessageID(m *pb.Message) string {
	h := sha256.Sum256(m.Data)
	return string(h[:])
}

// NodeOpts configures a Node. Key and Network are required.
type NodeOpts struct {
	Key       crypto.PrivKey // host identity; for a device, HostKey(signer)
	Network   string         // names the topics; [a-z0-9_.-]{1,64}
	Listen    []string       // multiaddrs; none for a node that only dials out
	Bootstrap []string       // multiaddrs ending in /p2p/<id>, kept connected
	// MaxPeers is the connection manager's high water (low water 3/4 of
	// it); 0 means 64, plenty for gossip (mesh degree 6-12).
	MaxPeers int
	// Memory is libp2p's resource-manager budget; 0 means 64 MiB.
	Memory int64
	// Checker judges records before they are delivered or forwarded.
	Checker Checker
	// SeenTTL is how long a message id is remembered; a record re-published
	// within it is dropped (by this node too). pubsub sweeps its seen cache
	// once a minute, so in practice an id is remembered up to a minute
	// longer. 0 means 30s.
	SeenTTL time.Duration
	// ValidateQueue bounds messages waiting for validation; 0 means 4096.
	ValidateQueue int
	// BackoffMin and BackoffMax bound the wait between bootstrap dials; 0
	// means 1s and 60s.
	BackoffMin, BackoffMax time.Duration
	// OnRecord receives every accepted record (from others and our own),
	// from gossip and, when set, from DirectProtocol streams: it may be
	// called concurrently. nil drops them (the node still relays) and does
	// not accept direct streams.
	OnRecord func(rec *attest.Record, from peer.ID)
	// OnReceipt receives every receipt whose signature verified, on one
	// goroutine; nil drops them.
	OnReceipt func(r *Receipt)
	// OnScores, if set, receives the gossip peer scores every ScoreInterval
	// (0 means 5s).
	OnScores      func(map[peer.ID]float64)
	ScoreInterval time.Duration
	Logger        *slog.Logger
	Now           func() time.Time
	Rand          *mrand.Rand // backoff jitter; nil seeds one from crypto/rand
}

// Node is a libp2p host in the gossip network of one network id: it relays
// and validates records and receipts, keeps its bootstrap peers connected,
// and hands what arrives to the OnRecord and OnReceipt callbacks. Agents and
// collectors are both Nodes.
type Node struct {
	o         NodeOpts
	h         host.Host
	ps        *pubsub.PubSub
	recT      *pubsub.Topic
	rcptT     *pubsub.Topic
	recSub    *pubsub.Subscription
	rcptSub   *pubsub.Subscription
	log       *slog.Logger
	bootstrap []peer.AddrInfo
	mesh      *meshTracer
	cancel    context.CancelFunc
	ctx       context.Context

	accepted, ignored, rejected, badReceipts atomic.Uint64

	mu     sync.Mutex
	boot   map[peer.ID]*BootstrapStatus
	scores map[peer.ID]float64
	rnd    *mrand.Rand

	closeOnce sync.Once
	closeErr  error
}

// BootstrapStatus is the reachability of one bootstrap peer.
type BootstrapStatus struct {
	Addr      string    `json:"addr"`
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

func validNetwork(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// NewNode starts the host (listening at once, so Addrs is known) and joins
// the record and receipt topics. Call Run to keep bootstrap peers connected
// and to deliver messages, and Close (or end Run) to stop.
func NewNode(o NodeOpts) (*Node, error) {
	if o.Key == nil {
		return nil, fmt.Errorf("p2p: node: no key: %w", ErrInvalidConfig)
	}
	if !validNetwork(o.Network) {
		return nil, fmt.Errorf("p2p: node: network %q: want 1-64 of [a-z0-9_.-]: %w", o.Network, ErrInvalidConfig)
	}
	if o.MaxPeers <= 0 {
		o.MaxPeers = 64
	}
	if o.Memory <= 0 {
		o.Memory = 64 << 20
	}
	if o.ValidateQueue <= 0 {
		o.ValidateQueue = 4096
	}
	if o.SeenTTL <= 0 {
		o.SeenTTL = 30 * time.Second
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = time.Second
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = max(60*time.Second, o.BackoffMin)
	}
	if o.ScoreInterval <= 0 {
		o.ScoreInterval = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Checker.Now == nil {
		o.Checker.Now = o.Now
	}
	if o.Rand == nil {
		var seed [16]byte
		_, _ = rand.Read(seed[:])
		o.Rand = mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	var listen []ma.Multiaddr
	for _, s := range o.Listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("p2p: node: listen address %q: %w: %w", s, ErrInvalidConfig, err)
		}
		listen = append(listen, a)
	}
	var boot []peer.AddrInfo
	for _, s := range o.Bootstrap {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("p2p: node: bootstrap peer %q (want /ip4/…/tcp/…/p2p/<peer id>): %w: %w", s, ErrInvalidConfig, err)
		}
		boot = append(boot, *ai)
	}

	h, err := newHost(hostConfig{key: o.Key, listen: listen, maxPeers: o.MaxPeers, memory: o.Memory})
	if err != nil {
		return nil, err
	}
	n := &Node{
		o:         o,
		h:         h,
		log:       o.Logger,
		bootstrap: boot,
		boot:      make(map[peer.ID]*BootstrapStatus),
		rnd:       o.Rand,
		mesh:      newMeshTracer(),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for _, b := range boot {
		n.boot[b.ID] = &BootstrapStatus{Addr: b.String()}
		h.ConnManager().Protect(b.ID, "bootstrap")
	}
	if err := n.startPubsub(); err != nil {
		n.Close()
		return nil, err
	}
	if o.OnRecord != nil {
		h.SetStreamHandler(DirectProtocol, n.handleDirect)
	}
	if err := h.start(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// scoreParams are the gossipsub peer-scoring parameters. The reasoning:
//   - Invalid messages (P4) are what matters: a record or receipt that fails
//     its signature can only come from the peer that made it, since every
//     honest node validates before forwarding. Weight -10 per topic, squared
//     count, decaying over an hour: 2 bad records cost -40 (below the gossip
//     threshold), 5 cost -250 (below publish), 7 cost -490 (graylisted:
//     everything from the peer is ignored until the penalty decays).
//   - First deliveries (P2) earn a little (capped at +10) so useful relays
//     are preferred in the mesh; time in mesh (P1) earns up to +1.
//   - Mesh delivery rate (P3) is off: devices publish in bursts and may be
//     quiet for minutes, which P3 would punish as under-delivery.
//   - IP colocation (P6) is off: many hotspots share a CGNAT address, and a
//     test mesh shares 127.0.0.1.
//   - Behaviour penalty (P7) for GRAFT flooding and broken promises: -1 per
//     offence squared beyond 6, decaying over 10 minutes.
func scoreParams(network string) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	topic := func() *pubsub.TopicScoreParams {
		return &pubsub.TopicScoreParams{
			SkipAtomicValidation:           true,
			TopicWeight:                    1,
			TimeInMeshWeight:               0.01,
			TimeInMeshQuantum:              time.Second,
			TimeInMeshCap:                  100,
			FirstMessageDeliveriesWeight:   0.5,
			FirstMessageDeliveriesDecay:    pubsub.ScoreParameterDecay(10 * time.Minute),
			FirstMessageDeliveriesCap:      20,
			InvalidMessageDeliveriesWeight: -10,
			InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
		}
	}
	p := &pubsub.PeerScoreParams{
		SkipAtomicValidation: true,
		Topics: map[string]*pubsub.TopicScoreParams{
			RecordTopic(network):  topic(),
			ReceiptTopic(network): topic(),
		},
		AppSpecificScore:            func(peer.ID) float64 { return 0 },
		AppSpecificWeight:           1,
		BehaviourPenaltyWeight:      -1,
		BehaviourPenaltyThreshold:   6,
		BehaviourPenaltyDecay:       pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:               time.Second,
		DecayToZero:                 0.01,
		RetainScore:                 time.Hour,
		IPColocationFactorThreshold: 1,
	}
	t := &pubsub.PeerScoreThresholds{
		SkipAtomicValidation:        true,
		GossipThreshold:             -20,
		PublishThreshold:            -100,
		GraylistThreshold:           -400,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 2,
	}
	return p, t
}

func (n *Node) startPubsub() error {
	params, thresholds := scoreParams(n.o.Network)
	ps, err := pubsub.NewGossipSub(n.ctx, n.h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMessageIdFn(MessageID),
		pubsub.WithSeenMessagesTTL(n.o.SeenTTL),
		pubsub.WithMaxMessageSize(attest.MaxRecordSize+4<<10),
		// Validation runs inline on pubsub's worker goroutines (one per
		// CPU) fed by this queue. A full queue drops a message before it is
		// marked seen, so a later re-publish gets through; the concurrent
		// async path instead drops throttled messages after marking them
		// seen, and the seen cache only sweeps once a minute.
		pubsub.WithValidateQueueSize(n.o.ValidateQueue),
		pubsub.WithPeerExchange(false),
		// A node's own records go to every topic peer, not only its mesh
		// (off by default in pubsub v0.16): a device's few peers all get its
		// records at once, and the first publish does not depend on the mesh
		// having formed.
		pubsub.WithFloodPublish(true),
		pubsub.WithRawTracer(n.mesh),
		pubsub.WithPeerScore(params, thresholds),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(n.inspect), n.o.ScoreInterval),
	)
	if err != nil {
		return fmt.Errorf("p2p: gossipsub: %w", err)
	}
	n.ps = ps
	// Validators run concurrently on several workers: validateRecord and
	// validateReceipt keep no state but atomics.
	recTopic, rcptTopic := RecordTopic(n.o.Network), ReceiptTopic(n.o.Network)
	if err := ps.RegisterTopicValidator(recTopic, n.validateRecord, pubsub.WithValidatorInline(true)); err != nil {
		return fmt.Errorf("p2p: register validator for %s: %w", recTopic, err)
	}
	if err := ps.RegisterTopicValidator(rcptTopic, n.validateReceipt, pubsub.WithValidatorInline(true)); err != nil {
		return fmt.Errorf("p2p: register validator for %s: %w", rcptTopic, err)
	}
	if n.recT, err = ps.Join(recTopic); err != nil {
		return fmt.Errorf("p2p: join %s: %w", recTopic, err)
	}
	if n.rcptT, err = ps.Join(rcptTopic); err != nil {
		return fmt.Errorf("p2p: join %s: %w", rcptTopic, err)
	}
	// Every node subscribes to both topics so it is in their meshes and
	// relays; a small buffer is enough since handlers are quick.
	if n.recSub, err = n.recT.Subscribe(pubsub.WithBufferSize(1024)); err != nil {
		return fmt.Errorf("p2p: subscribe %s: %w", recTopic, err)
	}
	if n.rcptSub, err = n.rcptT.Subscribe(pubsub.WithBufferSize(256)); err != nil {
		return fmt.Errorf("p2p: subscribe %s: %w", rcptTopic, err)
	}
	return nil
}

func (n *Node) inspect(scores map[peer.ID]float64) {
	n.mu.Lock()
	n.scores = scores
	n.mu.Unlock()
	if n.o.OnScores != nil {
		n.o.OnScores(scores)
	}
}

func (n *Node) validateRecord(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	v, rec, err := n.o.Checker.Check(m.Data)
	switch v {
	case Accept:
		n.accepted.Add(1)
		m.ValidatorData = rec
		return pubsub.ValidationAccept
	case Ignore:
		n.ignored.Add(1)
		n.log.Debug("ignoring record", "from", from, "err", err)
		return pubsub.ValidationIgnore
	}
	n.rejected.Add(1)
	n.log.Warn("rejecting record: peer score lowered", "from", from, "author", m.GetFrom(), "err", err)
	return pubsub.ValidationReject
}

func (n *Node) validateReceipt(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	r, err := OpenReceipt(m.Data)
	if err != nil {
		n.badReceipts.Add(1)
		n.log.Warn("rejecting receipt: peer score lowered", "from", from, "err", err)
		return pubsub.ValidationReject
	}
	if r.Network != n.o.Network {
		return pubsub.ValidationIgnore
	}
	m.ValidatorData = r
	return pubsub.ValidationAccept
}

// ID is the node's peer id (a device's device id).
func (n *Node) ID() peer.ID { return n.h.ID() }

// Host is the libp2p host, for tests and diagnostics.
func (n *Node) Host() host.Host { return n.h }

// Addrs are the listen addresses with /p2p/<id>, ready to be bootstrap
// entries for other nodes.
func (n *Node) Addrs() []string {
	var out []string
	for _, a := range n.h.Addrs() {
		out = append(out, a.String()+"/p2p/"+n.h.ID().String())
	}
	slices.Sort(out)
	return out
}

// PublishRecord gossips raw (a signed record). The node's own validator
// checks it first, so a bad record never leaves.
func (n *Node) PublishRecord(ctx context.Context, raw []byte) error {
	if err := n.recT.Publish(ctx, raw); err != nil {
		return fmt.Errorf("p2p: publish record: %w", err)
	}
	return nil
}

// PublishReceipt gossips a signed receipt.
func (n *Node) PublishReceipt(ctx context.Context, raw []byte) error {
	if err := n.rcptT.Publish(ctx, raw); err != nil {
		return fmt.Errorf("p2p: publish receipt: %w", err)
	}
	return nil
}

// RecordPeers are the peers known to subscribe to the record topic.
func (n *Node) RecordPeers() []peer.ID { return n.recT.ListPeers() }

// MeshPeers are the record topic's mesh peers: those this node forwards
// records to.
func (n *Node) MeshPeers() []peer.ID { return n.mesh.peers(RecordTopic(n.o.Network)) }

// Peers are the connected peers.
func (n *Node) Peers() []peer.ID { return n.h.Network().Peers() }

// Scores returns the latest gossip peer scores (refreshed every
// ScoreInterval).
func (n *Node) Scores() map[peer.ID]float64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[peer.ID]float64, len(n.scores))
	for k, v := range n.scores {
		out[k] = v
	}
	return out
}

// ValidationCounts returns how many records this node's validator accepted,
// ignored and rejected, and how many receipts it rejected.
func (n *Node) ValidationCounts() (accepted, ignored, rejected, badReceipts uint64) {
	return n.accepted.Load(), n.ignored.Load(), n.rejected.Load(), n.badReceipts.Load()
}

// Bootstrap returns the reachability of each bootstrap peer.
func (n *Node) Bootstrap() []BootstrapStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]BootstrapStatus, 0, len(n.boot))
	for _, b := range n.bootstrap {
		out = append(out, *n.boot[b.ID])
	}
	return out
}

// Run delivers messages to the callbacks and keeps bootstrap peers
// connected until ctx is done, then closes the node. Cancellation is a
// clean exit (nil).
func (n *Node) Run(ctx context.Context) error {
	defer n.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	sub, err := n.h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return fmt.Errorf("p2p: subscribe to connection events: %w", err)
	}
	defer sub.Close()
	wake := make(map[peer.ID]chan struct{}, len(n.bootstrap))
	for _, b := range n.bootstrap {
		ch := make(chan struct{}, 1)
		wake[b.ID] = ch
		wg.Go(func() { n.keepConnected(ctx, b, ch) })
	}
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				ev := e.(event.EvtPeerConnectednessChanged)
				if ch := wake[ev.Peer]; ch != nil && ev.Connectedness != network.Connected {
					select {
					case ch <- struct{}{}:
					default:
					}
				}
			}
		}
	})
	wg.Go(func() {
		for {
			m, err := n.recSub.Next(ctx)
			if err != nil {
				return
			}
			if rec, ok := m.ValidatorData.(*attest.Record); ok && n.o.OnRecord != nil {
				n.o.OnRecord(rec, m.GetFrom())
			}
		}
	})
	wg.Go(func() {
		for {
			m, err := n.rcptSub.Next(ctx)
			if err != nil {
				return
			}
			if r, ok := m.ValidatorData.(*Receipt); ok && n.o.OnReceipt != nil {
				n.o.OnReceipt(r)
			}
		}
	})
	<-ctx.Done()
	// Closing the subscriptions ends the Next calls even if the pubsub's own
	// context outlives ours.
	n.recSub.Cancel()
	n.rcptSub.Cancel()
	wg.Wait()
	return nil
}

// keepConnected dials b whenever it is not connected, backing off
// exponentially with jitter between failures.
func (n *Node) keepConnected(ctx context.Context, b peer.AddrInfo, wake <-chan struct{}) {
	retries := backoff.New(n.o.BackoffMin, n.o.BackoffMax, nil).WithJitter(n.jitter)
	for ctx.Err() == nil {
		var wait time.Duration
		if n.h.Network().Connectedness(b.ID) == network.Connected {
			n.setBoot(b.ID, true, "")
			retries.Reset()
			wait = 30 * time.Second // a safety net; disconnects wake us
		} else {
			dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			err := n.h.Connect(dctx, b)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				n.log.Info("connected to bootstrap peer", "peer", b.ID)
				n.setBoot(b.ID, true, "")
				retries.Reset()
				continue
			}
			n.setBoot(b.ID, false, err.Error())
			wait = retries.Next()
			n.log.Warn("bootstrap peer unreachable", "peer", b.ID, "err", err, "retry_in", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wake:
			t.Stop()
			n.setBoot(b.ID, false, "disconnected")
		case <-t.C:
		}
	}
}

// jitter is a uniform integer in [0, max) for backoff.WithJitter.
func (n *Node) jitter(max int64) int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rnd.Int64N(max)
}

func (n *Node) setBoot(id peer.ID, connected bool, lastErr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	b := n.boot[id]
	if b.Connected != connected || b.Since.IsZero() {
		b.Since = n.o.Now()
	}
	b.Connected = connected
	if lastErr != "" {
		b.LastError = lastErr
	} else if connected {
		b.LastError = ""
	}
}

// Close leaves the topics and stops the host. It is safe to call more than
// once and after Run.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		if n.recSub != nil {
			n.recSub.Cancel()
		}
		if n.rcptSub != nil {
			n.rcptSub.Cancel()
		}
		n.closeErr = n.h.Close()
	})
	return n.closeErr
}
