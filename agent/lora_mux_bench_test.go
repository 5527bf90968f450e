package agent

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/lora"
	"github.com/edge-agent/edge-agent/store"
)

// benchNS is a network server on loopback for the figures: it acks, keeps
// every PUSH_DATA with its arrival time, and sends PULL_RESPs on request.
type benchNS struct {
	conn *net.UDPConn
	mu   sync.Mutex
	push map[uint16][]byte    // by token
	at   map[uint16]time.Time // arrival of PUSH_DATA by token
	pull netip.AddrPort
	acks map[uint16]bool // TX_ACK tokens
}

func newBenchNS(tb testing.TB) *benchNS {
	tb.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	_ = c.SetReadBuffer(8 << 20)
	ns := &benchNS{conn: c, push: map[uint16][]byte{}, at: map[uint16]time.Time{}, acks: map[uint16]bool{}}
	tb.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			now := time.Now()
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			tok := binary.BigEndian.Uint16(buf[1:3])
			ns.mu.Lock()
			switch buf[3] {
			case 0: // PUSH_DATA
				ns.push[tok], ns.at[tok] = append([]byte(nil), buf[:n]...), now
				_, _ = c.WriteToUDPAddrPort([]byte{buf[0], buf[1], buf[2], 1}, from)
			case 2: // PULL_DATA
				ns.pull = from
				_, _ = c.WriteToUDPAddrPort([]byte{buf[0], buf[1], buf[2], 4}, from)
			case 5: // TX_ACK
				ns.acks[tok] = true
			}
			ns.mu.Unlock()
		}
	}()
	return ns
}

func (ns *benchNS) addr() string { return ns.conn.LocalAddr().String() }

// pullResp sends one downlink with token tok to where the gateway pulls.
func (ns *benchNS) pullResp(tb testing.TB, tok uint16) {
	ns.mu.Lock()
	to := ns.pull
	ns.mu.Unlock()
	body := fmt.Sprintf(`{"txpk":{"imme":false,"tmst":%d,"freq":869.525,"rfch":0,"powe":14,"modu":"LORA","datr":"SF9BW125","codr":"4/5","ipol":true,"size":12,"data":"YNobASYAAQABAgME"}}`, 1000*int(tok))
	b := append([]byte{2, byte(tok >> 8), byte(tok), 3}, body...)
	if _, err := ns.conn.WriteToUDPAddrPort(b, to); err != nil {
		tb.Fatal(err)
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// pushDatagram is PUSH_DATA i: a distinct 24-byte frame, CRC-bad when bad.
func pushDatagram(i int, bad bool) ([]byte, []byte) {
	phy := make([]byte, 24)
	binary.BigEndian.PutUint64(phy, uint64(i))
	stat := 1
	if bad {
		stat = -1
	}
	body := fmt.Sprintf(`{"rxpk":[{"time":"2026-12-01T10:00:00.%06dZ","tmst":%d,"chan":2,"rfch":0,"freq":868.500000,"stat":%d,"modu":"LORA","datr":"SF7BW125","codr":"4/5","rssi":-57,"lsnr":9.2,"size":24,"data":%q}]}`,
		i%1_000_000, 1000*i, stat, base64.StdEncoding.EncodeToString(phy))
	return append([]byte{2, byte(i >> 8), byte(i), 0, 0xB8, 0x27, 0xEB, 0xFF, 0xFE, 0x5A, 0x17, 0x01}, body...), phy
}

// sendPaced sends n datagrams at rate per second from conn, each stamped.
func sendPaced(tb testing.TB, conn *net.UDPConn, n int, rate float64, datagram func(i int) []byte) []time.Time {
	sent := make([]time.Time, n)
	start := time.Now()
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); wait > 0 {
			time.Sleep(wait)
		}
		b := datagram(i)
		sent[i] = time.Now()
		if _, err := conn.Write(b); err != nil {
			tb.Fatal(err)
		}
	}
	return sent
}

// drainAcks reads what the gateway receives: acks are counted, PULL_RESPs
// are stamped by token and answered with a TX_ACK.
type gatewayRx struct {
	mu     sync.Mutex
	acks   int
	downAt map[uint16]time.Time
}

func (g *gatewayRx) run(conn *net.UDPConn) {
	buf := make([]byte, 65536)
	for {
		n, err := conn.Read(buf)
		now := time.Now()
		if err != nil {
			return
		}
		if n < 4 {
			continue
		}
		g.mu.Lock()
		switch buf[3] {
		case 1, 4:
			g.acks++
		case 3:
			tok := binary.BigEndian.Uint16(buf[1:3])
			g.downAt[tok] = now
			_, _ = conn.Write(append([]byte{2, buf[1], buf[2], 5, 0xB8, 0x27, 0xEB, 0xFF, 0xFE, 0x5A, 0x17, 0x01}, `{"txpk_ack":{"error":"NONE"}}`...))
		}
		g.mu.Unlock()
	}
}

// BenchmarkLoRaMultiplexer produces docs/benchmarks.md's multiplexer
// figures through the whole daemon (driver, signing, store): 10,000
// uplinks at 1,000/s to two upstreams (one uplink_only), the same 10,000
// straight to a network server as the baseline, then 1,000 downlinks.
// Run: go test -run '^$' -bench LoRaMultiplexer -benchtime 1x ./agent
func BenchmarkLoRaMultiplexer(b *testing.B) {
	for range b.N {
		muxFigures(b)
	}
}

func muxFigures(b *testing.B) {
	const n, rate, downs = 10_000, 1000.0, 1000
	dir := b.TempDir()
	nsA, nsB, nsDirect := newBenchNS(b), newBenchNS(b), newBenchNS(b)
	cfg := configIn(dir)
	l := config.LoRa{}
	l.Name, l.Mode, l.Listen, l.ReceiveBuffer, l.TxAckTimeout = "hotspot", "udp", "127.0.0.1:0", 32*config.MiB, config.D(5*time.Second)
	l.Upstreams = []config.LoRaUpstream{{Name: "a", Addr: nsA.addr()}, {Name: "b", Addr: nsB.addr(), UplinkOnly: true}}
	cfg.Drivers.LoRa = []config.LoRa{l}
	a, err := New(Options{Config: &cfg, CreateKey: true, Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	srv := a.drivers[0].(*lora.Dev)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var ap netip.AddrPort
	condtest.WaitFor(b, 10*time.Second, "the lora driver to start", func() bool { ap, _ = srv.Addr(); return ap.IsValid() })
	gw, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ap))
	if err != nil {
		b.Fatal(err)
	}
	defer gw.Close()
	_ = gw.SetReadBuffer(8 << 20)
	rx := &gatewayRx{downAt: map[uint16]time.Time{}}
	go rx.run(gw)
	if _, err := gw.Write([]byte{2, 0, 1, 2, 0xB8, 0x27, 0xEB, 0xFF, 0xFE, 0x5A, 0x17, 0x01}); err != nil {
		b.Fatal(err)
	}

	// Uplinks through the multiplexer; every tenth has a CRC error.
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	datagrams := make([][]byte, n)
	phys := map[[32]byte]bool{}
	for i := range n {
		var phy []byte
		datagrams[i], phy = pushDatagram(i, i%10 == 9)
		if i%10 != 9 {
			phys[sha256.Sum256(phy)] = true
		}
	}
	sent := sendPaced(b, gw, n, rate, func(i int) []byte { return datagrams[i] })
	condtest.WaitFor(b, 60*time.Second, "uplinks at both upstreams", func() bool { return nsA.count() == n && nsB.count() == n })
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)

	// The same traffic straight to a network server: the baseline.
	direct, err := net.DialUDP("udp", nil, nsDirect.conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Close()
	sentDirect := sendPaced(b, direct, n, rate, func(i int) []byte { return datagrams[i] })
	condtest.WaitFor(b, 60*time.Second, "direct uplinks", func() bool { return nsDirect.count() == n })

	// Downlinks from a; b is uplink_only and sends some too.
	downSent := make([]time.Time, downs)
	for i := range downs {
		downSent[i] = time.Now()
		nsA.pullResp(b, uint16(0x8000+i))
		if i%10 == 0 {
			nsB.pullResp(b, uint16(0x4000+i))
		}
		time.Sleep(2 * time.Millisecond)
	}
	condtest.WaitFor(b, 60*time.Second, "downlinks at the gateway and TX_ACKs at a", func() bool {
		rx.mu.Lock()
		defer rx.mu.Unlock()
		nsA.mu.Lock()
		defer nsA.mu.Unlock()
		return len(rx.downAt) >= downs && len(nsA.acks) == downs
	})
	condtest.WaitFor(b, 60*time.Second, "90% of the records durable", func() bool { return a.Snapshot().Stored >= n*9/10+downs+1 })
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}

	// Byte-identical at each upstream.
	identical := map[string]int{}
	for name, ns := range map[string]*benchNS{"a": nsA, "b": nsB} {
		for i, d := range datagrams {
			if string(ns.push[uint16(i)]) == string(d) {
				identical[name]++
			}
		}
	}
	lat := func(ns *benchNS, sent []time.Time) []time.Duration {
		out := make([]time.Duration, n)
		for i := range n {
			out[i] = ns.at[uint16(i)].Sub(sent[i])
		}
		return out
	}
	latA, latB, latDirect := lat(nsA, sent), lat(nsB, sent), lat(nsDirect, sentDirect)
	var down []time.Duration
	foreign := 0
	for tok, at := range rx.downAt {
		if tok < 0x8000 || tok >= 0x8000+downs {
			foreign++ // not one of a's: uplink_only leaked or the agent sent its own
			continue
		}
		down = append(down, at.Sub(downSent[tok-0x8000]))
	}

	// What the store holds: every CRC-good frame, and one lora.tx per downlink.
	rs, err := store.Open(cfg.Store.Path, store.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer rs.Close()
	var attested, txOK, txAgent int
	err = rs.Records(func(r store.Record) error {
		rec, err := attest.Decode(r.Data)
		if err != nil {
			return err
		}
		switch rec.Claims.Kind {
		case drivers.KindLoRaRX:
			var o drivers.LoRaRX
			if err := cbor.Unmarshal(rec.Claims.Obs.(cbor.RawMessage), &o); err != nil {
				return err
			}
			if phys[[32]byte(o.SHA256)] {
				attested++
			}
		case drivers.KindLoRaTX:
			var o drivers.LoRaTX
			if err := cbor.Unmarshal(rec.Claims.Obs.(cbor.RawMessage), &o); err != nil {
				return err
			}
			if o.Upstream == "a" && o.Ack == lora.TxOK {
				txOK++
			} else if o.Upstream == "agent" {
				txAgent++
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) / n
	good := len(phys)
	b.Logf("uplinks: %d sent at %.0f/s; byte-identical at a %d/%d, at b (uplink_only) %d/%d; CRC-good %d, attested %d (%.1f %%)",
		n, rate, identical["a"], n, identical["b"], n, good, attested, 100*float64(attested)/float64(good))
	b.Logf("gateway → upstream latency: direct p50 %v p99 %v; via agent to a p50 %v p99 %v, to b p50 %v p99 %v; added p99 %v (a), %v (b)",
		percentile(latDirect, .5), percentile(latDirect, .99), percentile(latA, .5), percentile(latA, .99), percentile(latB, .5), percentile(latB, .99),
		percentile(latA, .99)-percentile(latDirect, .99), percentile(latB, .99)-percentile(latDirect, .99))
	b.Logf("downlinks: %d from a relayed, p50 %v p99 %v; TX_ACKs back at a %d; lora.tx ok %d; from uplink_only b or the agent at the gateway: %d; agent lora.tx %d",
		len(down), percentile(down, .5), percentile(down, .99), len(nsA.acks), txOK, foreign, txAgent)
	b.Logf("process CPU during the uplink phase (sender, agent with signing and store, and both servers): %v per uplink", cpu.Round(time.Microsecond))
	b.ReportMetric(float64(percentile(latA, .99)-percentile(latDirect, .99))/1e6, "added-p99-ms")
	b.ReportMetric(float64(percentile(down, .99))/1e6, "downlink-p99-ms")
	b.ReportMetric(100*float64(attested)/float64(good), "attested-%")
	if identical["a"] != n || identical["b"] != n || attested != good || foreign != 0 || txAgent != 0 || txOK != downs {
		b.Fatal("a figure is off; see the lines above")
	}
}

func (ns *benchNS) count() int {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return len(ns.push)
}
