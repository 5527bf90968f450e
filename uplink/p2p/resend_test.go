package p2p

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/uplink"
)

// TestResendPath: a record a trusted collector has not receipted goes
// straight to it when it speaks DirectProtocol (our collector), and over
// gossip when it does not (a standard libp2p collector), instead of failing
// on a stream the collector cannot open, forever.
func TestResendPath(t *testing.T) {
	for _, tt := range []struct {
		name       string
		standard   bool
		wantGossip int
	}{
		{"edge-agent collector: direct", false, 0},
		{"standard collector: gossip", true, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var direct atomic.Int32
			var coll peer.ID
			var collAddr string
			if tt.standard {
				h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
				if err != nil {
					t.Fatal(err)
				}
				defer h.Close()
				if _, err := pubsub.NewGossipSub(ctx, h); err != nil {
					t.Fatal(err)
				}
				coll, collAddr = h.ID(), h.Addrs()[0].String()+"/p2p/"+h.ID().String()
			} else {
				c := testNode(t, nil, func(*attest.Record, peer.ID) { direct.Add(1) })
				coll, collAddr = c.ID(), c.Addrs()[0]
			}
			dev := testNode(t, []string{collAddr}, nil)
			condtest.WaitFor(t, 20*time.Second, "identify to tell the device what the collector speaks", func() bool {
				ps, _ := dev.h.Peerstore().GetProtocols(coll)
				return slices.Contains(ps, pubsub.GossipSubID_v11)
			})
			s, err := attest.CreateKey("file:"+t.TempDir()+"/k", throwawayKeySeed())
			if err != nil {
				t.Fatal(err)
			}
			p, err := attest.EncodePayload(&attest.Claims{Chain: [16]byte{1}, Seq: 1, Time: time.Now().UnixNano(), Kind: "test.count", Source: "t",
				Obs: map[string]any{"n": 1}})
			if err != nil {
				t.Fatal(err)
			}
			raw, err := attest.SignPayload(s, p)
			if err != nil {
				t.Fatal(err)
			}
			u := &Uplink{o: Opts{MinReceipts: 1, ResendAfter: time.Millisecond, ResendMax: time.Second, Now: time.Now},
				log: slog.New(slog.DiscardHandler), collectors: map[peer.ID]bool{coll: true}, w: uplink.NewWindow(uplink.WindowOpts{})}
			fl := []*uplink.Flight{{Seq: 1, Chain: [16]byte{1}, Data: raw, Tries: 2}}
			gossiped := 0
			u.resend(ctx, dev, fl, func(string, *uplink.Flight) bool { return false }, func(*uplink.Flight) { gossiped++ })
			if gossiped != tt.wantGossip {
				t.Errorf("re-sent over gossip %d times, want %d", gossiped, tt.wantGossip)
			}
			if e := u.Status().LastError; e != "" {
				t.Errorf("re-send failed: %s", e)
			}
			if tt.wantGossip == 0 {
				condtest.WaitFor(t, 10*time.Second, "the collector to receive the record over DirectProtocol", func() bool { return direct.Load() == 1 })
			}
		})
	}
}

// testNode runs a Node on loopback until the test ends.
func testNode(tb testing.TB, boot []string, onRecord func(*attest.Record, peer.ID)) *Node {
	tb.Helper()
	s, err := attest.CreateKey("file:"+tb.TempDir()+"/k", throwawayKeySeed())
	if err != nil {
		tb.Fatal(err)
	}
	key, _ := HostKey(s)
	n, err := NewNode(NodeOpts{Key: key, Network: "test", Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: boot,
		OnRecord: onRecord, BackoffMin: 50 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	return n
}
