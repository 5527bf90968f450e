package p2p_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/uplink/p2p"
)

// BenchmarkCheck is what one core verifies per second: decode, canonical
// checks and the Ed25519 signature of a small record.
func BenchmarkCheck(b *testing.B) {
	s := newSigner(b, 11)
	recs := chainOf(b, s, [16]byte{3}, 64)
	var c p2p.Checker
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if v, _, err := c.Check(recs[i%len(recs)]); v != p2p.Accept {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkMeshLatency: 20 in-process nodes on loopback, each dialling
// three earlier ones; 19 devices publish, node 0 (the collector) measures
// sign-to-delivery latency. Run with -benchtime 1x.
func BenchmarkMeshLatency(b *testing.B) {
	const nodes, perNode = 20, 50
	var (
		mu  sync.Mutex
		lat []time.Duration
	)
	onRecord := func(r *attest.Record, _ peer.ID) {
		d := time.Since(time.Unix(0, r.Claims.Time))
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
	}
	ns := []*p2p.Node{node(b, 100, nil, onRecord)}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 1; i < nodes; i++ {
		var boot []string
		for _, j := range rng.Perm(i)[:min(i, 3)] {
			boot = append(boot, ns[j].Addrs()[0])
		}
		ns = append(ns, node(b, byte(100+i), boot, nil))
	}
	waitFor(b, 60*time.Second, "every node in a mesh", func() bool {
		for _, n := range ns {
			if len(n.MeshPeers()) == 0 {
				return false
			}
		}
		return true
	})
	signers := make([]attest.Signer, nodes)
	for i := 1; i < nodes; i++ {
		signers[i] = newSigner(b, byte(200+i))
	}
	b.ResetTimer()
	for b.Loop() {
		mu.Lock()
		lat = lat[:0]
		mu.Unlock()
		var prev [nodes][32]byte
		for k := 1; k <= perNode; k++ {
			for i := 1; i < nodes; i++ {
				raw, h := signOne(b, signers[i], [16]byte{byte(i)}, uint64(k), prev[i], map[string]any{"n": k})
				prev[i] = h
				if err := ns[i].PublishRecord(context.Background(), raw); err != nil {
					b.Fatal(err)
				}
			}
			time.Sleep(10 * time.Millisecond) // a steady rate, not one burst: this measures latency
		}
		want := (nodes - 1) * perNode
		waitFor(b, 60*time.Second, fmt.Sprintf("%d records at the collector", want), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(lat) >= want
		})
	}
	mu.Lock()
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	mu.Unlock()
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
}
