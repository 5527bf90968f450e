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
	"github.com/edge-agent/edge-agent/attest/attesttest"
	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/uplink/p2p"
)

// BenchmarkCheck is what one core verifies per second: decode, canonical
// checks and the Ed25519 signature of a small record.
func BenchmarkCheck(b *testing.B) {
	s := attesttest.NewSigner(b, 11)
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
	condtest.WaitFor(b, 60*time.Second, "every node in a mesh", func() bool {
		for _, n := range ns {
			if len(n.MeshPeers()) == 0 {
				return false
			}
		}
		return true
	})
	signers := make([]attest.Signer, nodes)
	for i := 1; i < nodes; i++ {
		signers[i] = attesttest.NewSigner(b, byte(200+i))
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
		condtest.WaitFor(b, 60*time.Second, fmt.Sprintf("%d records at the collector", want), func() bool {
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

// BenchmarkMeshLatencyStandard: the 20-node mesh of BenchmarkMeshLatency
// with a quarter of the nodes standard go-libp2p nodes (libp2p.New
// defaults, gossipsub with the network's message id); 14 agents publish and
// the 5 standard nodes measure sign-to-delivery latency. Run with
// -benchtime 1x.
func BenchmarkMeshLatencyStandard(b *testing.B) {
	const nodes, perNode = 20, 50
	var (
		mu  sync.Mutex
		lat []time.Duration
	)
	type member struct {
		n   *p2p.Node     // an edge-agent node, or
		std *standardNode // a standard one
	}
	addr := func(m member) string {
		if m.n != nil {
			return m.n.Addrs()[0]
		}
		return m.std.addr()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var ms []member
	var agents []int
	for i := range nodes {
		var boot []string
		for _, j := range rng.Perm(i)[:min(i, 3)] {
			boot = append(boot, addr(ms[j]))
		}
		if i%4 != 3 {
			ms = append(ms, member{n: node(b, byte(100+i), boot, nil)})
			if i > 0 {
				agents = append(agents, i)
			}
			continue
		}
		s := newStandardNode(b, "test")
		for _, a := range boot {
			ai, _ := peer.AddrInfoFromString(a)
			if err := s.h.Connect(context.Background(), *ai); err != nil {
				b.Fatal(err)
			}
		}
		go func() {
			for {
				m, err := s.recSub.Next(context.Background())
				if err != nil {
					return
				}
				rec, err := attest.Decode(m.Data)
				if err != nil {
					b.Error(err)
					return
				}
				d := time.Since(time.Unix(0, rec.Claims.Time))
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
		ms = append(ms, member{std: s})
	}
	condtest.WaitFor(b, 60*time.Second, "every node in a mesh", func() bool {
		for _, m := range ms {
			if m.n != nil && len(m.n.MeshPeers()) == 0 || m.std != nil && len(m.std.ps.ListPeers(p2p.RecordTopic("test"))) == 0 {
				return false
			}
		}
		return true
	})
	signers := make([]attest.Signer, nodes)
	for _, i := range agents {
		signers[i] = attesttest.NewSigner(b, byte(200+i))
	}
	b.ResetTimer()
	for b.Loop() {
		mu.Lock()
		lat = lat[:0]
		mu.Unlock()
		var prev [nodes][32]byte
		for k := 1; k <= perNode; k++ {
			for _, i := range agents {
				raw, h := signOne(b, signers[i], [16]byte{byte(i)}, uint64(k), prev[i], map[string]any{"n": k})
				prev[i] = h
				if err := ms[i].n.PublishRecord(context.Background(), raw); err != nil {
					b.Fatal(err)
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		want := len(agents) * perNode * (nodes / 4)
		// A standard node with pubsub's default queues (32 messages) may
		// drop some of a burst: wait until deliveries stop, and report the
		// share that arrived.
		last, still := -1, time.Now()
		for {
			mu.Lock()
			got := len(lat)
			mu.Unlock()
			if got >= want || time.Since(still) > 3*time.Second {
				b.ReportMetric(100*float64(got)/float64(want), "delivered-%")
				break
			}
			if got != last {
				last, still = got, time.Now()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	mu.Lock()
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	mu.Unlock()
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
}
