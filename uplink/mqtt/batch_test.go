package mqtt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edge-agent/edge-agent/uplink/mqtt/mqtttest"
)

// countingConn counts the socket reads under a batchConn.
type countingConn struct {
	net.Conn
	reads atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.Conn.Read(p)
}

// batchClient connects paho to broker through a batchConn and returns it.
func batchClient(t *testing.T, broker *mqtttest.Broker, will string) (paho.Client, **batchConn) {
	t.Helper()
	var bc *batchConn
	o := paho.NewClientOptions().AddBroker(broker.URL()).SetClientID(fmt.Sprintf("batch-%d", time.Now().UnixNano())).
		SetProtocolVersion(4).SetAutoReconnect(false).SetWriteTimeout(writeTimeout).SetOrderMatters(true).
		SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			nc, err := net.Dial("tcp", u.Host)
			if err != nil {
				return nil, err
			}
			bc = newBatchConn(&countingConn{Conn: nc}, writeTimeout)
			return bc, nil
		})
	if will != "" {
		o.SetWill(will, "gone", 1, false)
	}
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect through batchConn: %v", tok.Error())
	}
	return c, &bc
}

// Many PUBLISHes in a burst leave in few socket writes, and every one
// reaches the broker, in order; their PUBACKs come in few socket reads.
func TestBatchConnCoalescesPublishes(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Config{})
	rec := mqtttest.Record(t, broker.URL(), "batch/#")
	c, bc := batchClient(t, broker, "")
	defer c.Disconnect(0)
	const n = 2000
	toks := make([]paho.Token, n)
	for i := range toks {
		toks[i] = c.Publish("batch/x", 1, false, record(uint64(i+1), 300))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	msgs := rec.WaitFor(t, 30*time.Second, "every PUBLISH", func(m []mqtttest.Message) bool { return len(m) >= n })
	for i, m := range msgs {
		if !bytes.Equal(m.Payload, record(uint64(i+1), 300)) {
			t.Fatalf("message %d is not record %d", i, i+1)
		}
	}
	if w := (*bc).writes.Load(); w > n/4 {
		t.Errorf("%d PUBLISHes took %d socket writes", n, w)
	} else {
		t.Logf("%d PUBLISHes (and the CONNECT) in %d socket writes", n, w)
	}
	if r := (*bc).Conn.(*countingConn).reads.Load(); r > n/2 {
		t.Errorf("%d PUBACKs took %d socket reads", n, r)
	} else {
		t.Logf("%d PUBACKs (and the CONNACK) in %d socket reads", n, r)
	}
	// After a quiet spell a lone PUBLISH still goes out (the window ends).
	before := (*bc).writes.Load()
	if tok := c.Publish("batch/x", 1, false, []byte("lone")); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("lone publish: %v", tok.Error())
	}
	if w := (*bc).writes.Load(); w != before+1 {
		t.Errorf("lone PUBLISH: %d socket writes, want 1", w-before)
	}
}

// Disconnect's DISCONNECT is sent before the socket closes: the broker sees
// a clean end and does not publish the will.
func TestBatchConnCloseSendsDisconnect(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Config{})
	rec := mqtttest.Record(t, broker.URL(), "will/#")
	c, _ := batchClient(t, broker, "will/agent")
	c.Disconnect(250)
	// A marker published after the close: a will would arrive before it.
	m, _ := batchClient(t, broker, "")
	defer m.Disconnect(0)
	if tok := m.Publish("will/marker", 1, false, []byte("after")); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("marker: %v", tok.Error())
	}
	msgs := rec.WaitFor(t, 10*time.Second, "the marker", func(m []mqtttest.Message) bool { return len(m) > 0 })
	if msgs[0].Topic != "will/marker" {
		t.Errorf("broker published %q (%s) before the marker: the DISCONNECT was not sent", msgs[0].Topic, msgs[0].Payload)
	}
}

// Bytes written just before Close reach the peer; once the peer is gone,
// Write reports the failure instead of swallowing bytes for ever.
func TestBatchConnFlushOnCloseAndErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(s)
		got <- b
		s.Close()
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	bc := newBatchConn(nc, writeTimeout)
	var want []byte
	for i := range 100 {
		p := fmt.Appendf(nil, "packet %d;", i)
		want = append(want, p...)
		if _, err := bc.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := bc.Close(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("peer got %q, want %q", b, want)
	}
	if _, err := bc.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v, want net.ErrClosed", err)
	}

	// A peer that resets the connection once bytes arrive: a later Write
	// fails.
	go func() {
		s, err := ln.Accept()
		if err == nil {
			s.Read(make([]byte, 1))
			s.(*net.TCPConn).SetLinger(0)
			s.Close()
		}
	}()
	nc, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	bc = newBatchConn(nc, writeTimeout)
	defer bc.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := bc.Write(make([]byte, 1024)); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Write kept succeeding 30s after the peer reset the connection")
		}
		time.Sleep(time.Millisecond)
	}
}
