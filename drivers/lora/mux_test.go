package lora

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/clock/clocktest"
	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/lora/gwmp"
)

var (
	gwA = gwmp.EUI{0xAA, 0x55, 0x5A, 0, 0, 0, 0, 1}
	gwB = gwmp.EUI{0xAA, 0x55, 0x5A, 0, 0, 0, 0, 2}
)

func ups(list ...Upstream) []Upstream { return list }

func upTo(name string, ns *fakeNS) Upstream { return Upstream{Name: name, Addr: ns.addr.String()} }

// rxpk is a CRC-good LoRaWAN uplink with tmst i.
func rxpk(i int) string {
	return fmt.Sprintf(`{"rxpk":[{"tmst":%d,"chan":2,"rfch":0,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","rssi":-35,"lsnr":5.1,"data":"QNobASaAAgEKyv4BAgME"}]}`, i)
}

var downPK = gwmp.TXPK{Tmst: ptr(uint32(5_000_000)), Freq: 869_525_000, RFCh: 0, Powe: 14, Modu: "LORA",
	Datr: gwmp.DataRate{LoRa: "SF9BW125"}, Codr: "4/5", IPol: true, Data: gwmp.Payload{0x60, 0xDA, 0x1B, 0x01, 0x26, 0x00, 0x01, 0x00, 1, 2, 3, 4}}

// obsOf collects observations of one kind, skipping others.
func (s *server) nextKind(tb testing.TB, kind string) drivers.Observation {
	tb.Helper()
	for {
		o := s.nextObs(tb)
		if o.Kind == kind {
			return o
		}
	}
}

// TestMuxTwoUpstreams: every gateway datagram reaches both upstreams byte
// for byte, each from its own socket; the gateway is acked once, by the
// agent; only the downlink-capable upstream's PULL_RESP reaches the gateway,
// and the TX_ACK goes back to it alone; the downlink is attested.
func TestMuxTwoUpstreams(t *testing.T) {
	nsA, nsB := newFakeNS(t), newFakeNS(t)
	upB := upTo("b", nsB)
	upB.UplinkOnly = true
	s := startServer(t, Opts{Upstreams: ups(upTo("a", nsA), upB), TxAckTimeout: 2 * time.Second}, 64)
	if s.dev.Stats().Tap {
		t.Fatal("tap with upstreams")
	}
	f := newForwarder(t, s, gwA)
	f.pull(t, 2, 1)
	var sent [][]byte
	for i := range 20 {
		b := append(gwmp.AppendHeader(nil, gwmp.Header{Version: 2, Token: uint16(100 + i), ID: gwmp.PushData, EUI: gwA}), rxpk(i)...)
		sent = append(sent, b)
		f.send(t, b)
		f.expectAck(t, 2, uint16(100+i), gwmp.PushAck)
	}
	for _, ns := range []*fakeNS{nsA, nsB} {
		condtest.WaitFor(t, 5*time.Second, "uplinks at the upstream", func() bool { return ns.count(gwmp.PushData) == 20 })
		var pushes [][]byte
		for _, b := range ns.received() {
			if gwmp.Identifier(b[3]) == gwmp.PushData {
				pushes = append(pushes, b)
			}
		}
		for i := range sent {
			if !bytes.Equal(pushes[i], sent[i]) {
				t.Fatalf("upstream got %q\nwant %q", pushes[i], sent[i])
			}
		}
		if src := ns.sources(gwA); len(src) != 1 {
			t.Fatalf("upstream saw the gateway from %v; want one stable socket", src)
		}
	}
	if nsA.sources(gwA)[0] == nsB.sources(gwA)[0] {
		t.Fatal("both upstreams see the same socket; want one per gateway and upstream")
	}
	for range 20 {
		if o := s.nextKind(t, drivers.KindLoRaRX); o.Data.(drivers.LoRaRX).Gateway != gwA.String() {
			t.Fatalf("rx %+v", o)
		}
	}
	// No extra acks reach the gateway: the upstreams' PUSH_ACKs are consumed.
	if p, ok := f.recvTimeout(t, 100*time.Millisecond); ok {
		t.Fatalf("gateway got an extra %v", p.ID)
	}

	nsB.downlink(t, gwA, 0x0B0B, downPK) // uplink_only: dropped
	nsA.downlink(t, gwA, 0x0A0A, downPK)
	p, ok := f.recvTimeout(t, 2*time.Second)
	if !ok || p.ID != gwmp.PullResp || p.Token != 0x0A0A || mustJSON(t, p.Pull.TXPK) != mustJSON(t, func() gwmp.TXPK { pk := downPK; pk.Size = 12; return pk }()) {
		t.Fatalf("gateway got %+v, %v", p, ok)
	}
	if p, ok := f.recvTimeout(t, 200*time.Millisecond); ok {
		t.Fatalf("uplink_only upstream's downlink reached the gateway: %+v", p)
	}
	f.txAck(t, 0x0A0A, `{"txpk_ack":{"error":"NONE"}}`)
	condtest.WaitFor(t, 5*time.Second, "TX_ACK at upstream a", func() bool { return len(nsA.acks()) == 1 })
	if a := nsA.acks()[0]; a.Token != 0x0A0A || a.EUI != gwA {
		t.Fatalf("TX_ACK at a: %+v", a)
	}
	if len(nsB.acks()) != 0 {
		t.Fatalf("uplink_only upstream got a TX_ACK")
	}
	tx := s.nextKind(t, drivers.KindLoRaTX).Data.(drivers.LoRaTX)
	if tx.Upstream != "a" || tx.Ack != TxOK || tx.Gateway != gwA.String() || tx.Token != 0x0A0A || tx.Size != 12 ||
		!bytes.Equal(tx.SHA256, sum(downPK.Data)) || tx.Tmst == nil || *tx.Tmst != 5_000_000 || !tx.IPol || tx.MType != "UnconfirmedDataDown" || tx.DevAddr != "26011BDA" {
		t.Fatalf("lora.tx %+v", tx)
	}
	st := s.dev.Stats()
	a, b := st.Upstreams[0], st.Upstreams[1]
	if a.State != UpstreamOK || a.DownlinksRelayed != 1 || a.TxAcksReturned != 1 || a.AckRatio != 1 || a.Acks != 21 {
		t.Errorf("upstream a %+v", a)
	}
	if b.State != UpstreamOK || b.Downlinks != 1 || b.DownlinksDropped != 1 || b.DownlinksRelayed != 0 || !b.UplinkOnly {
		t.Errorf("upstream b %+v", b)
	}
}

// TestMuxTokenCollision: two upstreams use the same PULL_RESP token for the
// same gateway; the second is remapped, and each TX_ACK returns to its own
// upstream with its own token and verdict.
func TestMuxTokenCollision(t *testing.T) {
	nsA, nsC := newFakeNS(t), newFakeNS(t)
	var next atomic.Uint32
	next.Store(0x7000)
	s := startServer(t, Opts{Upstreams: ups(upTo("a", nsA), upTo("c", nsC)), Token: func() uint16 { return uint16(next.Add(1)) }}, 16)
	f := newForwarder(t, s, gwA)
	f.pull(t, 2, 1)
	nsA.downlink(t, gwA, 0x1234, downPK)
	first, ok := f.recvTimeout(t, 2*time.Second)
	if !ok || first.Token != 0x1234 {
		t.Fatalf("first downlink %+v %v", first, ok)
	}
	pkC := downPK
	pkC.Data = gwmp.Payload{0xC0, 0xFF, 0xEE}
	nsC.downlink(t, gwA, 0x1234, pkC)
	second, ok := f.recvTimeout(t, 2*time.Second)
	if !ok || second.Token == 0x1234 || !bytes.Equal(second.Pull.TXPK.Data, pkC.Data) {
		t.Fatalf("second downlink %+v %v: want a remapped token", second, ok)
	}
	// Answer in reverse order, with different verdicts.
	f.txAck(t, second.Token, `{"txpk_ack":{"error":"TOO_LATE"}}`)
	f.txAck(t, first.Token, `{"txpk_ack":{"warn":"TX_POWER","value":"12"}}`)
	condtest.WaitFor(t, 5*time.Second, "TX_ACKs", func() bool { return len(nsA.acks()) == 1 && len(nsC.acks()) == 1 })
	a, c := nsA.acks()[0], nsC.acks()[0]
	if a.Token != 0x1234 || a.Ack == nil || a.Ack.TxpkAck.Warn != "TX_POWER" {
		t.Errorf("a got %+v", a)
	}
	if c.Token != 0x1234 || c.Ack == nil || c.Ack.TxpkAck.Error != "TOO_LATE" {
		t.Errorf("c got %+v; want its own token 0x1234 and TOO_LATE", c)
	}
	got := map[string]drivers.LoRaTX{}
	for range 2 {
		tx := s.nextKind(t, drivers.KindLoRaTX).Data.(drivers.LoRaTX)
		got[tx.Upstream] = tx
	}
	if got["a"].Ack != TxOK || got["a"].Value != "12" || got["c"].Ack != TxRejected || got["c"].Error != "TOO_LATE" || got["c"].Size != 3 {
		t.Fatalf("lora.tx records %+v", got)
	}
	if st := s.dev.Stats(); st.Upstreams[1].TokensRemapped != 1 || st.Upstreams[0].TokensRemapped != 0 {
		t.Errorf("remap counters %+v", st.Upstreams)
	}
}

// TestMuxTxAckAbsent: a downlink the gateway never answers is attested as
// such once tx_ack_timeout passes.
func TestMuxTxAckAbsent(t *testing.T) {
	ns := newFakeNS(t)
	s := startServer(t, Opts{Upstreams: ups(upTo("a", ns)), TxAckTimeout: 100 * time.Millisecond}, 16)
	f := newForwarder(t, s, gwA)
	f.pull(t, 2, 1)
	ns.downlink(t, gwA, 9, downPK)
	if _, ok := f.recvTimeout(t, 2*time.Second); !ok {
		t.Fatal("no downlink")
	}
	tx := s.nextKind(t, drivers.KindLoRaTX).Data.(drivers.LoRaTX)
	if tx.Ack != TxTimeout || tx.Upstream != "a" {
		t.Fatalf("lora.tx %+v; want timeout", tx)
	}
	if g := s.dev.Stats().Gateways[0]; g.TxFailed != 1 || g.TxSent != 1 {
		t.Errorf("gateway %+v", g)
	}
}

// TestMuxGatewayFilter: an upstream limited to some gateways sees only them.
func TestMuxGatewayFilter(t *testing.T) {
	nsAll, nsOnlyB := newFakeNS(t), newFakeNS(t)
	onlyB := upTo("only-b", nsOnlyB)
	onlyB.Gateways = []gwmp.EUI{gwB}
	s := startServer(t, Opts{Upstreams: ups(upTo("all", nsAll), onlyB)}, 16)
	fa, fb := newForwarder(t, s, gwA), newForwarder(t, s, gwB)
	fa.pushAcked(t, 2, 1, rxpk(1))
	fb.pushAcked(t, 2, 2, rxpk(2))
	condtest.WaitFor(t, 5*time.Second, "uplinks", func() bool { return nsAll.count(gwmp.PushData) == 2 && nsOnlyB.count(gwmp.PushData) == 1 })
	if len(nsOnlyB.sources(gwA)) != 0 || len(nsOnlyB.sources(gwB)) != 1 {
		t.Fatalf("filtered upstream saw %v / %v", nsOnlyB.sources(gwA), nsOnlyB.sources(gwB))
	}
}

// TestMuxUpstreamDisappears: an upstream that goes away is shown
// unreachable while the other upstream and attestation carry on; when it
// returns it gets the traffic again.
func TestMuxUpstreamDisappears(t *testing.T) {
	nsA, nsB := newFakeNS(t), newFakeNS(t)
	s := startServer(t, Opts{Upstreams: ups(upTo("a", nsA), upTo("b", nsB))}, 256)
	f := newForwarder(t, s, gwA)
	f.pushAcked(t, 2, 1, rxpk(1))
	condtest.WaitFor(t, 5*time.Second, "first uplink at a", func() bool { return nsA.count(gwmp.PushData) == 1 })
	nsA.stop()
	for i := 2; i < 12; i++ {
		f.pushAcked(t, 2, uint16(i), rxpk(i))
		time.Sleep(5 * time.Millisecond)
	}
	condtest.WaitFor(t, 5*time.Second, "a unreachable", func() bool { return s.dev.Stats().Upstreams[0].State == UpstreamUnreachable })
	if got := nsB.count(gwmp.PushData); got != 11 {
		condtest.WaitFor(t, 5*time.Second, "b keeps receiving", func() bool { return nsB.count(gwmp.PushData) == 11 })
	}
	for range 11 {
		s.nextKind(t, drivers.KindLoRaRX)
	}
	st := s.dev.Stats().Upstreams[0]
	if st.Unreachable == 0 || st.LastError == "" {
		t.Fatalf("a %+v", st)
	}
	if b := s.dev.Stats().Upstreams[1]; b.State != UpstreamOK {
		t.Fatalf("b %+v", b)
	}
	nsA.restart()
	before := nsA.count(gwmp.PushData)
	f.pushAcked(t, 2, 50, rxpk(50))
	condtest.WaitFor(t, 5*time.Second, "a receives again", func() bool { return nsA.count(gwmp.PushData) == before+1 })
	condtest.WaitFor(t, 5*time.Second, "a ok again", func() bool { return s.dev.Stats().Upstreams[0].State == UpstreamOK })
}

// TestMuxUnresolvable: an upstream whose name does not resolve is retried
// with backoff in the background, never delaying the other upstream or the
// records, and used as soon as it resolves.
func TestMuxUnresolvable(t *testing.T) {
	nsA, nsB := newFakeNS(t), newFakeNS(t)
	var mu sync.Mutex
	var calls int
	fail := true
	lookup := func(ctx context.Context, host string) ([]netip.Addr, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if host != "ns.example" {
			return nil, errors.New("unexpected host " + host)
		}
		if fail {
			mu.Unlock()
			// A slow, failing resolver: it must delay nothing else.
			select {
			case <-time.After(2 * time.Second):
			case <-ctx.Done():
			}
			mu.Lock()
			return nil, &netDNSError{}
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	named := Upstream{Name: "named", Addr: fmt.Sprintf("ns.example:%d", nsB.addr.Port())}
	clk := clocktest.NewFake(time.Now()) // the retry waits; the resolver's own slowness stays wall time
	s := startServer(t, Opts{Upstreams: ups(upTo("a", nsA), named), LookupHost: lookup, Clock: clk}, 64)
	f := newForwarder(t, s, gwA)
	start := time.Now()
	for i := range 5 {
		f.pushAcked(t, 2, uint16(i), rxpk(i))
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("5 acked pushes took %v while the resolver hangs", d)
	}
	condtest.WaitFor(t, 5*time.Second, "a receives", func() bool { return nsA.count(gwmp.PushData) == 5 })
	for range 5 {
		s.nextKind(t, drivers.KindLoRaRX)
	}
	condtest.WaitFor(t, 5*time.Second, "first lookup failed", func() bool { return s.dev.Stats().Upstreams[1].ResolveFailures > 0 })
	st := s.dev.Stats().Upstreams[1]
	if st.State != UpstreamUnresolved || st.Unsent != 5 || st.ResolveFailures == 0 || st.LastError == "" {
		t.Fatalf("named %+v", st)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if d := clk.AdvanceNext(t); d != backoffMin {
		t.Fatalf("first retry of the lookup after %v, want %v", d, backoffMin)
	}
	condtest.WaitFor(t, 5*time.Second, "resolved after backoff", func() bool { return s.dev.Stats().Upstreams[1].Resolved.IsValid() })
	if st := s.dev.Stats().Upstreams[1]; st.ResolveFailures != 1 {
		t.Errorf("%d failed lookups before the name resolved, want 1 (the retry waits on the clock)", st.ResolveFailures)
	}
	f.pushAcked(t, 2, 99, rxpk(99))
	condtest.WaitFor(t, 5*time.Second, "named receives", func() bool { return nsB.count(gwmp.PushData) == 1 })
}

type netDNSError struct{}

func (*netDNSError) Error() string { return "lookup ns.example: no such host" }

// TestAckOnReceipt: with the pipeline stalled (emit does not return until
// the end), every PUSH_ACK still comes, at once, and every uplink is
// relayed. Before acknowledging on receipt, the second PUSH_ACK waited for
// the first emit.
func TestAckOnReceipt(t *testing.T) {
	ns := newFakeNS(t)
	s := startServer(t, Opts{Upstreams: ups(upTo("a", ns))}, 0) // unbuffered and unread: emit blocks
	f := newForwarder(t, s, gwA)
	var took []time.Duration
	for i := range 200 {
		t0 := time.Now()
		f.pushAcked(t, 2, uint16(i), rxpk(i)) // fails after 5 s without its ack
		took = append(took, time.Since(t0))
	}
	slices.Sort(took)
	if p50 := took[len(took)/2]; p50 > 20*time.Millisecond {
		t.Fatalf("median PUSH_ACK %v with the pipeline stalled; want well under the forwarder's 100 ms", p50)
	}
	t.Logf("PUSH_ACK with the pipeline stalled: median %v, slowest %v", took[len(took)/2], took[len(took)-1])
	condtest.WaitFor(t, 5*time.Second, "relayed while stalled", func() bool { return ns.count(gwmp.PushData) == 200 })
	for range 200 {
		s.nextKind(t, drivers.KindLoRaRX)
	}
}

// TestGatewayTable: the table is capped, says so, forgets silent gateways,
// and honours the allow-list.
func TestGatewayTable(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	logs := &logBuffer{}
	s := startServer(t, Opts{MaxGateways: 3, GatewayExpiry: time.Minute, Now: clock, Logger: logs.logger()}, 64)
	var fs []*forwarder
	for i := range 10 {
		f := newForwarder(t, s, gwmp.EUI{1, 2, 3, 4, 5, 6, 7, byte(i)})
		fs = append(fs, f)
		f.push(t, 2, uint16(i), rxpk(i))
		if i < 3 {
			f.expectAck(t, 2, uint16(i), gwmp.PushAck)
		} else if p, ok := f.recvTimeout(t, 50*time.Millisecond); ok {
			t.Fatalf("gateway %d beyond the cap was acked: %+v", i, p)
		}
	}
	st := s.dev.Stats()
	if len(st.Gateways) != 3 || st.GatewaysRefused != 7 || st.Malformed["gateway_table_full"] != 7 || st.MaxGateways != 3 {
		t.Fatalf("table %d gateways, refused %d, malformed %v", len(st.Gateways), st.GatewaysRefused, st.Malformed)
	}
	if !bytes.Contains([]byte(logs.String()), []byte("gateway table full")) {
		t.Errorf("cap not logged:\n%s", logs.String())
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	condtest.WaitFor(t, 5*time.Second, "expiry", func() bool { return len(s.dev.Stats().Gateways) == 0 })
	fs[9].pushAcked(t, 2, 77, rxpk(77))
	if st := s.dev.Stats(); st.GatewaysExpired != 3 || len(st.Gateways) != 1 || st.Gateways[0].EUI != "0102030405060709" {
		t.Fatalf("after expiry %+v", st)
	}

	allowed := startServer(t, Opts{Gateways: []gwmp.EUI{gwA}}, 16)
	fa, fb := newForwarder(t, allowed, gwA), newForwarder(t, allowed, gwB)
	fa.pushAcked(t, 2, 1, rxpk(1))
	fb.push(t, 2, 2, rxpk(2))
	if _, ok := fb.recvTimeout(t, 50*time.Millisecond); ok {
		t.Fatal("gateway outside the allow-list was acked")
	}
	condtest.WaitFor(t, 5*time.Second, "refusal counted", func() bool { return allowed.dev.Stats().Malformed["gateway_not_allowed"] == 1 })
	if st := allowed.dev.Stats(); len(st.Gateways) != 1 {
		t.Fatalf("allow-list table %+v", st.Gateways)
	}
}

// TestStatValues: counters the gateway left out stay out, and absurd values
// are dropped from the record and counted.
func TestStatValues(t *testing.T) {
	s := startServer(t, Opts{StatInterval: time.Nanosecond}, 16)
	f := newForwarder(t, s, gwA)
	f.pushAcked(t, 2, 1, `{"stat":{"time":"2026-01-01 00:00:00 GMT","lati":46.2,"long":6.1,"alti":400,"ackr":null}}`)
	st := s.nextKind(t, drivers.KindLoRaStat).Data.(Stat)
	if st.RXNb != nil || st.ACKR != nil || st.TXNb != nil || st.Lati == nil || *st.Alti != 400 {
		t.Fatalf("position-only stat %+v: counters must stay absent", st)
	}
	f.pushAcked(t, 2, 2, `{"stat":{"time":"2026-01-01 00:00:10 GMT","lati":1e308,"long":6.1,"alti":1e308,"rxnb":0,"ackr":250,"temp":-1e308}}`)
	st = s.nextKind(t, drivers.KindLoRaStat).Data.(Stat)
	if st.Lati != nil || st.Long != nil || st.Alti != nil || st.ACKR != nil || st.Temp != nil || st.RXNb == nil || *st.RXNb != 0 {
		t.Fatalf("absurd stat %+v", st)
	}
	m := s.dev.Stats().Malformed
	if m["stat_position"] != 1 || m["stat_ackr"] != 1 || m["stat_temp"] != 1 {
		t.Fatalf("reasons %v", m)
	}
}

// TestTapMode: without upstreams the agent acks and attests and sends
// nothing anywhere but the acks.
func TestTapMode(t *testing.T) {
	s := startServer(t, Opts{Upstreams: []Upstream{}}, 16)
	if !s.dev.Stats().Tap {
		t.Fatal("not tap")
	}
	f := newForwarder(t, s, gwA)
	f.pull(t, 2, 1)
	f.pushAcked(t, 2, 2, rxpk(1))
	s.nextKind(t, drivers.KindLoRaRX)
	if p, ok := f.recvTimeout(t, 100*time.Millisecond); ok {
		t.Fatalf("tap sent %+v", p)
	}
}

// TestMuxDownlinkFlood: an upstream that floods PULL_RESPs the gateway never
// answers cannot grow the pending table beyond maxPending.
func TestMuxDownlinkFlood(t *testing.T) {
	ns := newFakeNS(t)
	s := startServer(t, Opts{Upstreams: ups(upTo("a", ns)), TxAckTimeout: time.Minute}, 16)
	go func() {
		for range s.obs {
		}
	}()
	f := newForwarder(t, s, gwA)
	f.pull(t, 2, 1)
	const n = maxPending + 2000
	for i := range n {
		ns.downlink(t, gwA, uint16(i), downPK)
		if i%32 == 31 {
			time.Sleep(time.Millisecond) // mostly within the link socket's default buffer
		}
	}
	// A loaded machine may drop some at the link socket; what arrived
	// must add up.
	var last uint64
	condtest.WaitFor(t, 5*time.Second, "downlinks settle", func() bool {
		d := s.dev.Stats().Upstreams[0].Downlinks
		settled := d == last && d > maxPending
		last = d
		time.Sleep(50 * time.Millisecond)
		return settled
	})
	s.dev.mu.Lock()
	pending := len(s.dev.pending)
	s.dev.mu.Unlock()
	st := s.dev.Stats()
	u := st.Upstreams[0]
	if pending != maxPending || u.DownlinksRelayed != maxPending || u.DownlinksDropped != u.Downlinks-maxPending || st.Malformed["downlink_backlog"] != u.DownlinksDropped {
		t.Fatalf("pending %d, relayed %d, dropped %d of %d, counted %d", pending, u.DownlinksRelayed, u.DownlinksDropped, u.Downlinks, st.Malformed["downlink_backlog"])
	}
}
