package p2p

import (
	"bytes"
	"context"
	cryptorand "crypto/rand"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/condtest"
)

// TestRogueRejectedNotForwarded: a peer publishing well-formed records with
// bad signatures is rejected by its neighbour, which never forwards them
// (the third node sees only the good record), and its score drops.
//
//	rogue ── relay ── watcher
func TestRogueRejectedNotForwarded(t *testing.T) { rogueTrial(t) }

// rogueTrial runs the trial and returns how many records the watcher got
// and how many forged ones reached its validator (make soak counts them).
func rogueTrial(t *testing.T) (delivered, forwarded int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dev, err := attest.CreateKey("file:"+filepath.Join(t.TempDir(), "k"), bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(seq uint64) []byte {
		c := attest.Claims{Chain: [16]byte{1}, Seq: seq, Time: time.Now().UnixNano(), Kind: "test.count", Source: "t", Obs: map[string]any{"n": seq}}
		if seq > 1 {
			c.Prev = [32]byte{1}
		}
		p, err := attest.EncodePayload(&c)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := attest.SignPayload(dev, p)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}

	start := func(boot []string) *Node {
		t.Helper()
		s, err := attest.CreateKey("file:"+filepath.Join(t.TempDir(), "k"), throwawayKeySeed())
		if err != nil {
			t.Fatal(err)
		}
		key, _ := HostKey(s)
		n, err := NewNode(NodeOpts{Key: key, Network: "test", Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: boot,
			ScoreInterval: 100 * time.Millisecond, BackoffMin: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	relay := start(nil)
	watcher := start(relay.Addrs())
	var (
		mu   sync.Mutex
		seen [][]byte
	)
	watcher.o.OnRecord = func(r *attest.Record, _ peer.ID) {
		mu.Lock()
		seen = append(seen, bytes.Clone(r.Raw))
		mu.Unlock()
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = relay.Run(ctx) })
	wg.Go(func() { _ = watcher.Run(ctx) })

	// The rogue: an assembled host with a plain gossipsub and no validator.
	rs, err := attest.CreateKey("file:"+filepath.Join(t.TempDir(), "k"), throwawayKeySeed())
	if err != nil {
		t.Fatal(err)
	}
	rkey, _ := HostKey(rs)
	rh, err := newHost(hostConfig{key: rkey, maxPeers: 8, memory: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer rh.Close()
	rps, err := pubsub.NewGossipSub(ctx, rh, pubsub.WithMessageSignaturePolicy(pubsub.StrictSign), pubsub.WithMessageIdFn(MessageID), pubsub.WithFloodPublish(true))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rps.Join(RecordTopic("test"))
	if err != nil {
		t.Fatal(err)
	}
	rsub, err := rt.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer rsub.Cancel()
	if err := rh.start(); err != nil { // after its pubsub registered: see ownedHost.start
		t.Fatal(err)
	}
	ai, _ := peer.AddrInfoFromString(relay.Addrs()[0])
	if err := rh.Connect(ctx, *ai); err != nil {
		t.Fatal(err)
	}
	// Standard go-libp2p nodes (libp2p.New, gossipsub without a validator)
	// in the mesh too, one beside the relay and one beside the watcher:
	// they must hear only what the relay forwards, and keep their scores.
	var stds []*standardPeer
	for _, n := range []*Node{relay, watcher} {
		sp := newStandardPeer(ctx, t)
		ai, _ := peer.AddrInfoFromString(n.Addrs()[0])
		if err := sp.h.Connect(ctx, *ai); err != nil {
			t.Fatal(err)
		}
		stds = append(stds, sp)
	}
	condtest.WaitFor(t, 20*time.Second, "the relay to have rogue, watcher and a standard node in its mesh", func() bool {
		return len(rt.ListPeers()) > 0 && len(watcher.MeshPeers()) == 2 && len(relay.MeshPeers()) == 3 &&
			len(stds[0].ps.ListPeers(RecordTopic("test"))) > 0 && len(stds[1].ps.ListPeers(RecordTopic("test"))) > 0
	})

	// A valid record first: proves the path rogue → relay → watcher works.
	good := mk(1)
	if err := rt.Publish(ctx, good); err != nil {
		t.Fatal(err)
	}
	condtest.WaitFor(t, 20*time.Second, "the watcher to receive the good record", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 1
	})
	const nBad = 5
	for i := range nBad {
		bad := mk(uint64(2 + i))
		bad[len(bad)-1] ^= 0x80 // break the Ed25519 signature, keep the shape
		if err := rt.Publish(ctx, bad); err != nil {
			t.Fatal(err)
		}
	}
	condtest.WaitFor(t, 20*time.Second, "the relay to reject every bad record", func() bool {
		_, _, rej, _ := relay.ValidationCounts()
		return rej == nBad
	})
	// Rejected is final: nothing can be forwarded after it.
	mu.Lock()
	if len(seen) != 1 || !bytes.Equal(seen[0], good) {
		t.Errorf("watcher saw %d records, want only the good one", len(seen))
	}
	mu.Unlock()
	if _, _, rej, _ := watcher.ValidationCounts(); rej != 0 {
		t.Errorf("watcher's validator saw %d bad records: the relay forwarded them", rej)
	}
	condtest.WaitFor(t, 20*time.Second, "the rogue's score at the relay to fall below the gossip threshold", func() bool {
		s, ok := relay.Scores()[rh.ID()]
		return ok && s < -20
	})
	if s := relay.Scores()[watcher.ID()]; s < 0 {
		t.Errorf("the honest watcher's score is %v, want >= 0", s)
	}
	for i, sp := range stds {
		if s := []*Node{relay, watcher}[i].Scores()[sp.h.ID()]; s < 0 {
			t.Errorf("standard node %d: score %v, want >= 0", i, s)
		}
		if got := sp.received(); len(got) != 1 || !bytes.Equal(got[0], good) {
			t.Errorf("standard node %d received %d records, want only the good one", i, len(got))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	_, _, rej, _ := watcher.ValidationCounts()
	return len(seen), int(rej)
}

// standardPeer is a go-libp2p node with its defaults and a gossipsub
// without validators, subscribed to the record topic.
type standardPeer struct {
	h   host.Host
	ps  *pubsub.PubSub
	sub *pubsub.Subscription
	mu  sync.Mutex
	got [][]byte
}

func newStandardPeer(ctx context.Context, t *testing.T) *standardPeer {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithMessageIdFn(MessageID))
	if err != nil {
		t.Fatal(err)
	}
	top, err := ps.Join(RecordTopic("test"))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := top.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	sp := &standardPeer{h: h, ps: ps, sub: sub}
	go func() {
		for {
			m, err := sub.Next(ctx)
			if err != nil {
				return
			}
			sp.mu.Lock()
			sp.got = append(sp.got, bytes.Clone(m.Data))
			sp.mu.Unlock()
		}
	}()
	return sp
}

func (sp *standardPeer) received() [][]byte {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return slices.Clone(sp.got)
}

// throwawayKeySeed feeds CreateKey a fresh random seed, for keys whose value
// the test does not care about.
func throwawayKeySeed() *bytes.Reader {
	return bytes.NewReader(randomSeed())
}

func randomSeed() []byte {
	b := make([]byte, 32)
	_, _ = cryptorand.Read(b)
	return b
}
