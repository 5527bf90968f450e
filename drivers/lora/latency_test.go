package lora

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/drivers/lora/gwmp"
)

// BenchmarkRelayLatency measures gateway → upstream latency through the
// driver alone (emit discards: no signing, no store), at 1,000 datagrams/s,
// against the same traffic sent straight to a server.
// Run: go test -run '^$' -bench RelayLatency -benchtime 1x ./drivers/lora
func BenchmarkRelayLatency(b *testing.B) {
	for range b.N {
		const n = 5000
		ns, direct := newFakeNS(b), newFakeNS(b)
		s := startServer(b, Opts{Upstreams: ups(upTo("a", ns))}, 1<<16)
		go func() {
			for range s.obs {
			}
		}()
		f := newForwarder(b, s, gwA)
		dc, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(direct.addr))
		if err != nil {
			b.Fatal(err)
		}
		defer dc.Close()
		run := func(c *net.UDPConn, ns *fakeNS) []time.Duration {
			sent := make([]time.Time, n)
			start := time.Now()
			for i := range n {
				time.Sleep(time.Until(start.Add(time.Duration(i) * time.Millisecond)))
				sent[i] = time.Now()
				_, _ = c.Write(append(gwmp.AppendHeader(nil, gwmp.Header{Version: 2, Token: uint16(i), ID: gwmp.PushData, EUI: gwA}), rxpk(i)...))
			}
			condtest.WaitFor(b, 5*time.Second, "all", func() bool { return ns.count(gwmp.PushData) == n })
			ns.mu.Lock()
			defer ns.mu.Unlock()
			out := make([]time.Duration, n)
			for i := range n {
				out[i] = ns.pushAt[uint16(i)].Sub(sent[i])
			}
			slices.Sort(out)
			return out
		}
		via := run(f.conn, ns)
		dir := run(dc, direct)
		p := func(d []time.Duration, q float64) time.Duration { return d[int(float64(len(d))*q)] }
		b.Logf("%d at 1000/s: direct p50 %v p99 %v; via driver p50 %v p99 %v; added p99 %v",
			n, p(dir, .5), p(dir, .99), p(via, .5), p(via, .99), p(via, .99)-p(dir, .99))
		b.ReportMetric(float64(p(via, .99)-p(dir, .99))/1e6, "added-p99-ms")
	}
}
