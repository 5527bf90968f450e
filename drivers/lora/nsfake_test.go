package lora

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/drivers/lora/gwmp"
)

// fakeNS is a network server on loopback, playing what TTN, ChirpStack's
// Gateway Bridge or gateway-rs do on their Semtech UDP port: it acks
// PUSH_DATA and PULL_DATA, remembers where each gateway pulls from, sends
// PULL_RESP downlinks there, and keeps everything it received.
type fakeNS struct {
	tb   testing.TB
	addr netip.AddrPort

	mu     sync.Mutex
	conn   *net.UDPConn
	got    [][]byte                      // every datagram, in order
	pushAt map[uint16]time.Time          // arrival of PUSH_DATA by token
	from   map[gwmp.EUI][]netip.AddrPort // distinct sources per gateway
	pull   map[gwmp.EUI]netip.AddrPort
	txAcks []gwmp.Packet
	pushes int
	done   chan struct{}
	noAck  bool
}

func newFakeNS(tb testing.TB) *fakeNS {
	tb.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	ns := &fakeNS{tb: tb, addr: c.LocalAddr().(*net.UDPAddr).AddrPort()}
	ns.serve(c)
	tb.Cleanup(ns.stop)
	return ns
}

func (ns *fakeNS) serve(c *net.UDPConn) {
	ns.mu.Lock()
	ns.conn, ns.done = c, make(chan struct{})
	if ns.from == nil {
		ns.from, ns.pull, ns.pushAt = map[gwmp.EUI][]netip.AddrPort{}, map[gwmp.EUI]netip.AddrPort{}, map[uint16]time.Time{}
	}
	done := ns.done
	ns.mu.Unlock()
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			at := time.Now()
			if err != nil {
				return
			}
			b := append([]byte(nil), buf[:n]...)
			p, err := gwmp.Decode(b)
			ns.mu.Lock()
			ns.got = append(ns.got, b)
			if err == nil {
				known := false
				for _, a := range ns.from[p.EUI] {
					known = known || a == from
				}
				if !known {
					ns.from[p.EUI] = append(ns.from[p.EUI], from)
				}
				switch p.ID {
				case gwmp.PushData:
					ns.pushes++
					ns.pushAt[p.Token] = at
					if !ns.noAck {
						_, _ = c.WriteToUDPAddrPort([]byte{p.Version, b[1], b[2], byte(gwmp.PushAck)}, from)
					}
				case gwmp.PullData:
					ns.pull[p.EUI] = from
					_, _ = c.WriteToUDPAddrPort([]byte{p.Version, b[1], b[2], byte(gwmp.PullAck)}, from)
				case gwmp.TxAck:
					ns.txAcks = append(ns.txAcks, p)
				}
			}
			ns.mu.Unlock()
		}
	}()
}

// stop closes the socket: the next datagram to it draws ICMP port
// unreachable, as from a server that went away.
func (ns *fakeNS) stop() {
	ns.mu.Lock()
	c, done := ns.conn, ns.done
	ns.conn = nil
	ns.mu.Unlock()
	if c != nil {
		_ = c.Close()
		<-done
	}
}

// restart binds the same port again: the server is back.
func (ns *fakeNS) restart() {
	ns.tb.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ns.addr))
	if err != nil {
		ns.tb.Fatal(err)
	}
	ns.serve(c)
}

// downlink sends a PULL_RESP to where gateway eui pulls from.
func (ns *fakeNS) downlink(tb testing.TB, eui gwmp.EUI, token uint16, pk gwmp.TXPK) {
	tb.Helper()
	condtest.WaitFor(tb, 5*time.Second, "gateway's PULL_DATA at the network server", func() bool {
		ns.mu.Lock()
		defer ns.mu.Unlock()
		return ns.pull[eui].IsValid()
	})
	pk.Size = uint16(len(pk.Data))
	b, err := gwmp.Encode(gwmp.Packet{Header: gwmp.Header{Version: 2, Token: token, ID: gwmp.PullResp}, Pull: &gwmp.PullRespBody{TXPK: pk}})
	if err != nil {
		tb.Fatal(err)
	}
	ns.mu.Lock()
	to, c := ns.pull[eui], ns.conn
	ns.mu.Unlock()
	if _, err := c.WriteToUDPAddrPort(b, to); err != nil {
		tb.Fatal(err)
	}
}

func (ns *fakeNS) received() [][]byte {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return append([][]byte(nil), ns.got...)
}

func (ns *fakeNS) count(id gwmp.Identifier) int {
	n := 0
	for _, b := range ns.received() {
		if len(b) > 3 && gwmp.Identifier(b[3]) == id {
			n++
		}
	}
	return n
}

func (ns *fakeNS) acks() []gwmp.Packet {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return append([]gwmp.Packet(nil), ns.txAcks...)
}

func (ns *fakeNS) sources(eui gwmp.EUI) []netip.AddrPort {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return append([]netip.AddrPort(nil), ns.from[eui]...)
}

// recvTimeout reads one datagram at the gateway, or reports none.
func (f *forwarder) recvTimeout(tb testing.TB, d time.Duration) (gwmp.Packet, bool) {
	tb.Helper()
	buf := make([]byte, 65536)
	_ = f.conn.SetReadDeadline(time.Now().Add(d))
	n, err := f.conn.Read(buf)
	if err != nil {
		return gwmp.Packet{}, false
	}
	p, err := gwmp.Decode(buf[:n])
	if err != nil {
		tb.Fatalf("gateway decode %x: %v", buf[:n], err)
	}
	return p, true
}
