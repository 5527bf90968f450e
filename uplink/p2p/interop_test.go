package p2p_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/attesttest"
	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/uplink/p2p"
	"github.com/edge-agent/edge-agent/uplink/uplinktest"
)

// standardNode is what any operator would run, written only against the
// public libp2p API and docs/interop.md: libp2p.New with its defaults
// (identify, ping, Noise and TLS, Yamux, QUIC…), listening on loopback TCP,
// and a gossipsub with strict signing, the network's message id (SHA-256 of
// the data) and the queue sizes the page asks for, subscribed to both
// topics. It does not flood-publish (go-libp2p-pubsub's default), the
// harder case for receipts. None of this package's host code is involved.
type standardNode struct {
	h         host.Host
	ps        *pubsub.PubSub
	rec, rcpt *pubsub.Topic
	recSub    *pubsub.Subscription
}

func newStandardNode(tb testing.TB, network string) *standardNode {
	tb.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		tb.Fatalf("standard node: libp2p.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(func() { cancel(); _ = h.Close() })
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMessageIdFn(func(m *pb.Message) string { s := sha256.Sum256(m.Data); return string(s[:]) }),
		// docs/interop.md: pubsub's default queues (32) drop bursts.
		pubsub.WithValidateQueueSize(4096))
	if err != nil {
		tb.Fatalf("standard node: gossipsub: %v", err)
	}
	s := &standardNode{h: h, ps: ps}
	if s.rec, err = ps.Join("edge-agent/" + network + "/att/1"); err != nil {
		tb.Fatal(err)
	}
	if s.rcpt, err = ps.Join("edge-agent/" + network + "/rcpt/1"); err != nil {
		tb.Fatal(err)
	}
	if s.recSub, err = s.rec.Subscribe(pubsub.WithBufferSize(1024)); err != nil {
		tb.Fatal(err)
	}
	rcptSub, err := s.rcpt.Subscribe() // to be in the receipt topic's mesh
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.recSub.Cancel(); rcptSub.Cancel() })
	return s
}

func (s *standardNode) addr() string {
	return s.h.Addrs()[0].String() + "/p2p/" + s.h.ID().String()
}

// collect plays a standard collector: it verifies every record it hears and
// publishes a receipt for it, signed with its host key, until ctx ends. It
// returns the seqs it verified, in arrival order, when ctx is done.
func (s *standardNode) collect(ctx context.Context, tb testing.TB, network string) <-chan []uint64 {
	key := s.h.Peerstore().PrivKey(s.h.ID())
	out := make(chan []uint64, 1)
	go func() {
		var seqs []uint64
		defer func() { out <- seqs }()
		for {
			m, err := s.recSub.Next(ctx)
			if err != nil {
				return
			}
			rec, err := attest.Decode(m.Data)
			if err != nil || rec.Verify() != nil {
				tb.Errorf("standard collector: record from %s does not verify: %v", m.ReceivedFrom, err)
				continue
			}
			seqs = append(seqs, rec.Claims.Seq)
			raw, err := p2p.SignReceipt(key, &p2p.Receipt{Network: network, Collector: s.h.ID(), Device: rec.DeviceID,
				Time: time.Now().UnixNano(), Chains: []p2p.ChainRanges{{Chain: rec.Claims.Chain, Ranges: p2p.SeqRanges([]uint64{rec.Claims.Seq})}}})
			if err != nil {
				tb.Errorf("standard collector: sign receipt: %v", err)
				return
			}
			if err := s.rcpt.Publish(ctx, raw); err != nil && ctx.Err() == nil {
				tb.Errorf("standard collector: publish receipt: %v", err)
			}
		}
	}()
	return out
}

// checkSpeaksStandard fails unless the standard node identified peer as a
// gossipsub peer, lists it in the record topic, and can ping it.
func (s *standardNode) checkSpeaksStandard(tb testing.TB, network string, p peer.ID) {
	tb.Helper()
	condtest.WaitFor(tb, 20*time.Second, "identify: the standard node to learn the protocols of "+p.String(), func() bool {
		ps, _ := s.h.Peerstore().GetProtocols(p)
		return slices.Contains(ps, protocol.ID("/ipfs/id/1.0.0")) && slices.Contains(ps, pubsub.GossipSubID_v11)
	})
	condtest.WaitFor(tb, 20*time.Second, "gossipsub: the standard node to list "+p.String()+" on the record topic", func() bool {
		return slices.Contains(s.ps.ListPeers("edge-agent/"+network+"/att/1"), p)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r := <-ping.Ping(ctx, s.h, p); r.Error != nil {
		tb.Errorf("ping: the standard node cannot ping %s: %v", p, r.Error)
	}
}

// runUplink runs an agent's Uplink on q until the test ends.
func runUplink(tb testing.TB, o p2p.Opts, q *uplinktest.Queue) *p2p.Uplink {
	tb.Helper()
	u, err := p2p.New(o)
	if err != nil {
		tb.Fatalf("p2p.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx, q) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("uplink Run: %v", err)
		}
	})
	return u
}

// freeTCPAddr is a loopback TCP multiaddr nobody listens on right now.
func freeTCPAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port)
}

// TestStandardCollector: a standard go-libp2p node is the agent's only
// trusted collector. Records reach it and verify, its receipts ack the
// outbox, and it sees the agent as an ordinary gossipsub peer (identify,
// topic membership, ping), whichever side dials.
func TestStandardCollector(t *testing.T) {
	for _, dir := range []string{"agent dials", "standard node dials"} {
		t.Run(dir, func(t *testing.T) {
			const network = "interop"
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			std := newStandardNode(t, network)
			signer := attesttest.NewSigner(t, 61)
			o := p2p.DefaultOpts()
			o.Signer, o.Network = signer, network
			o.Collectors = []string{std.h.ID().String()}
			o.ResendAfter, o.BackoffMin = 2*time.Second, 50*time.Millisecond
			var listen ma.Multiaddr
			if dir == "agent dials" {
				o.Bootstrap = []string{std.addr()}
			} else {
				o.Listen = []string{freeTCPAddr(t)}
				listen = ma.StringCast(o.Listen[0])
			}
			q := uplinktest.NewQueue()
			const n = 8
			q.Add(chainOf(t, signer, [16]byte{6, 1}, n)...)
			seqs := std.collect(ctx, t, network)
			runUplink(t, o, q)
			agent, _ := peer.Decode(signer.DeviceID())
			if listen != nil {
				condtest.WaitFor(t, 20*time.Second, "the standard node to connect to the agent", func() bool {
					cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
					defer ccancel()
					return std.h.Connect(cctx, peer.AddrInfo{ID: agent, Addrs: []ma.Multiaddr{listen}}) == nil
				})
			}
			std.checkSpeaksStandard(t, network, agent)
			q.WaitAcked(t, n, 30*time.Second)
			cancel()
			got := <-seqs
			slices.Sort(got)
			if got = slices.Compact(got); len(got) != n {
				t.Errorf("standard collector verified seqs %v, want 1..%d", got, n)
			}
		})
	}
}

// TestStandardRelay: two agents whose only peer is a standard node still
// hear each other: it relays records it has only checked for a gossip
// signature. It also gossips a record itself (as a gateway would), which
// the agents' validators accept.
//
//	a ── standard ── b
func TestStandardRelay(t *testing.T) {
	const network = "test"
	std := newStandardNode(t, network)
	var (
		mu  sync.Mutex
		got = map[uint64]peer.ID{}
	)
	a := node(t, 71, []string{std.addr()}, nil)
	b := node(t, 72, []string{std.addr()}, func(r *attest.Record, from peer.ID) {
		mu.Lock()
		got[r.Claims.Seq] = from
		mu.Unlock()
	})
	condtest.WaitFor(t, 20*time.Second, "the standard node to have both agents in its record mesh", func() bool {
		return len(std.ps.ListPeers(p2p.RecordTopic(network))) == 2 && len(a.MeshPeers()) == 1 && len(b.MeshPeers()) == 1
	})
	dev := attesttest.NewSigner(t, 73)
	recs := chainOf(t, dev, [16]byte{7, 3}, 2)
	if err := a.PublishRecord(context.Background(), recs[0]); err != nil {
		t.Fatal(err)
	}
	if err := std.rec.Publish(context.Background(), recs[1]); err != nil {
		t.Fatal(err)
	}
	condtest.WaitFor(t, 20*time.Second, "agent b to receive both records through the standard node", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2
	})
	mu.Lock()
	if got[1] != a.ID() || got[2] != std.h.ID() {
		t.Errorf("gossip authors %v, want seq 1 from a (%s) and seq 2 from the standard node (%s)", got, a.ID(), std.h.ID())
	}
	mu.Unlock()
	if ps := b.Peers(); len(ps) != 1 || ps[0] != std.h.ID() {
		t.Errorf("agent b is connected to %v, want only the standard node: the records were not relayed", ps)
	}
	if _, _, rej, _ := b.ValidationCounts(); rej != 0 {
		t.Errorf("agent b rejected %d records relayed by the standard node", rej)
	}
}

// TestStandardSubscriber is the report: a standard node that only
// listens to the record topic, named as the agent's bootstrap peer, hears
// the agent's records (it heard none with the identify stand-in).
func TestStandardSubscriber(t *testing.T) {
	const network = "mainnet"
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ps, err := pubsub.NewGossipSub(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join("edge-agent/mainnet/att/1")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	signer := attesttest.NewSigner(t, 91)
	o := p2p.DefaultOpts()
	o.Signer, o.Network = signer, network
	o.Bootstrap = []string{h.Addrs()[0].String() + "/p2p/" + h.ID().String()}
	o.Collectors = []string{attesttest.NewSigner(t, 92).DeviceID()} // not this node
	q := uplinktest.NewQueue()
	q.Add(chainOf(t, signer, [16]byte{9, 1}, 3)...)
	runUplink(t, o, q)
	got := map[uint64]bool{} // gossip does not keep order
	for len(got) < 3 {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("the standard subscriber heard %d of 3 records: %v (pubsub peers on the topic: %v)", len(got), err, topic.ListPeers())
		}
		rec, err := attest.Decode(m.Data)
		if err != nil || rec.Verify() != nil {
			t.Fatalf("the standard subscriber got a record that does not verify: %v", err)
		}
		got[rec.Claims.Seq] = true
	}
}
