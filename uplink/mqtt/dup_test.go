package mqtt

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/uplink/mqtt/mqtttest"
)

// pubackDropper is a TCP proxy to a broker that drops every nth PUBACK on
// its way to the client, as a lossy broker or middlebox would.
type pubackDropper struct {
	ln      net.Listener
	every   int
	seen    atomic.Int64
	dropped atomic.Int64
	wg      sync.WaitGroup
}

func dropPubacks(tb testing.TB, brokerAddr string, every int) *pubackDropper {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &pubackDropper{ln: ln, every: every}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", brokerAddr)
			if err != nil {
				c.Close()
				continue
			}
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(b, c); b.Close() }()
			go func() { defer p.wg.Done(); p.filter(c, b); c.Close() }()
		}
	}()
	tb.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

// filter copies MQTT packets from the broker to the client, leaving out
// every nth PUBACK (fixed header 0x40).
func (p *pubackDropper) filter(dst io.Writer, src io.Reader) {
	r := bufio.NewReader(src)
	for {
		h, err := r.ReadByte()
		if err != nil {
			return
		}
		pkt := []byte{h}
		n, mult := 0, 1
		for { // remaining length, MQTT 3.1.1 §2.2.3
			b, err := r.ReadByte()
			if err != nil {
				return
			}
			pkt = append(pkt, b)
			n += int(b&0x7f) * mult
			mult *= 128
			if b&0x80 == 0 {
				break
			}
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		if h == 0x40 && p.seen.Add(1)%int64(p.every) == 0 {
			p.dropped.Add(1)
			continue
		}
		if _, err := dst.Write(append(pkt, body...)); err != nil {
			return
		}
	}
}

// A dropped PUBACK is answered by a DUP re-send on the same connection
// after ResendAfter, not by a stall of twice the keepalive and a reconnect.
func TestLostPubackIsResentWithDup(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Config{})
	proxy := dropPubacks(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port())), 40)
	rec := mqtttest.Record(t, b.URL(), "edge-agent/+/att")
	q := newFakeQueue(t)
	const n = 600
	q.add(n, 300)
	o := testOpts(t, "tcp://"+proxy.ln.Addr().String())
	o.Window = 16
	o.ResendAfter = 300 * time.Millisecond
	u := mustNew(t, o)
	start := time.Now()
	runUplink(t, u, q)
	// On a connection that stalls for 2×5 s + 3 s per lost PUBACK this
	// would take minutes.
	waitUntil(t, 30*time.Second, "every record acked", func() bool { return q.ackedSeq() == n })
	took := time.Since(start)
	st := u.Status()
	t.Logf("%d records in %v; %d PUBACKs dropped, %d DUP re-sends, %d reconnects", n, took.Round(time.Millisecond), proxy.dropped.Load(), st.DupResent, st.Reconnects)
	if proxy.dropped.Load() < 5 {
		t.Fatalf("only %d PUBACKs dropped: the test does not exercise the loss", proxy.dropped.Load())
	}
	if st.DupResent == 0 || st.Reconnects != 0 {
		t.Fatalf("status %+v: want DUP re-sends on the one connection", st)
	}
	waitUntil(t, 10*time.Second, "every record at the subscriber", func() bool { return len(rec.Messages()) >= n })
	checkDelivered(t, rec.Messages(), n, 300)
}

// A server that accepts TCP but never answers CONNECT is reachable: it is
// not reported as "unreachable".
func TestSilentServerIsNotUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // hold it open, say nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	o := testOpts(t, "tcp://"+ln.Addr().String())
	o.ConnectTimeout = 300 * time.Millisecond
	u := mustNew(t, o)
	q := newFakeQueue(t)
	q.add(1, 10)
	runUplink(t, u, q)
	waitUntil(t, 10*time.Second, "a failed attempt", func() bool { return u.Status().Failures >= 1 })
	if why := u.Status().LastError; !strings.Contains(why, "did not answer the MQTT CONNECT") || strings.Contains(why, "unreachable") {
		t.Errorf("LastError = %q, want it to say the server accepted but did not answer", why)
	}
}
