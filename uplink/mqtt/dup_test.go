package mqtt

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/uplink/mqtt/mqtttest"
)

// A dropped PUBACK is answered by a DUP re-send on the same connection
// after DupAfter, not by a stall of twice the keepalive and a reconnect.
func TestLostPubackIsResentWithDup(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Config{})
	proxy := mqtttest.DropPubacks(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port())), 40)
	rec := mqtttest.Record(t, b.URL(), "edge-agent/+/att/#")
	q := newFakeQueue(t)
	const n = 600
	q.add(n, 300)
	o := testOpts(t, proxy.URL())
	o.Window = 16
	o.DupAfter = 300 * time.Millisecond
	u := mustNew(t, o)
	start := time.Now()
	runUplink(t, u, q)
	// On a connection that stalls for 2×5 s + 3 s per lost PUBACK this
	// would take minutes.
	condtest.WaitFor(t, 30*time.Second, "every record acked", func() bool { return q.ackedSeq() == n })
	took := time.Since(start)
	st := u.Status()
	t.Logf("%d records in %v; %d PUBACKs dropped, %d DUP re-sends, %d reconnects", n, took.Round(time.Millisecond), proxy.Dropped(), st.DupResent, st.Reconnects)
	if proxy.Dropped() < 5 {
		t.Fatalf("only %d PUBACKs dropped: the test does not exercise the loss", proxy.Dropped())
	}
	if st.DupResent == 0 || st.Reconnects != 0 {
		t.Fatalf("status %+v: want DUP re-sends on the one connection", st)
	}
	condtest.WaitFor(t, 10*time.Second, "every record at the subscriber", func() bool { return len(rec.Messages()) >= n })
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
	condtest.WaitFor(t, 10*time.Second, "a failed attempt", func() bool { return u.Status().Failures >= 1 })
	if why := u.Status().LastError; !strings.Contains(why, "did not answer the MQTT CONNECT") || strings.Contains(why, "unreachable") {
		t.Errorf("LastError = %q, want it to say the server accepted but did not answer", why)
	}
}
