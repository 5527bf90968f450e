package lora

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/lora/gwmp"
)

// server is a Dev running on an ephemeral loopback port, with its
// observations delivered to a channel.
type server struct {
	dev  *Dev
	addr *net.UDPAddr
	obs  chan drivers.Observation
	done chan error
	stop context.CancelFunc
}

func startServer(tb testing.TB, o Opts, obsBuf int) *server {
	tb.Helper()
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	d, err := New("gw-test", &o)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{dev: d, obs: make(chan drivers.Observation, obsBuf), done: make(chan error, 1), stop: cancel}
	emit := func(ctx context.Context, ob drivers.Observation) error {
		select {
		case s.obs <- ob:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	go func() { s.done <- d.Run(ctx, emit) }()
	condtest.WaitFor(tb, 5*time.Second, "the server to bind", func() bool {
		ap, ok := d.Addr()
		s.addr = net.UDPAddrFromAddrPort(ap)
		return ok
	})
	tb.Cleanup(func() {
		cancel()
		if err := <-s.done; err != nil {
			tb.Errorf("Run returned %v after cancel; want nil", err)
		}
	})
	return s
}

// nextObs waits for one observation.
func (s *server) nextObs(tb testing.TB) drivers.Observation {
	tb.Helper()
	select {
	case o := <-s.obs:
		return o
	case <-time.After(5 * time.Second):
		tb.Fatal("no observation within 5 s")
	}
	return drivers.Observation{}
}

// noObs checks that nothing more was emitted (after a round trip that the
// server handled later than everything before it).
func (s *server) noObs(tb testing.TB) {
	tb.Helper()
	s.settle(tb)
	select {
	case o := <-s.obs:
		tb.Fatalf("unexpected observation %+v", o)
	default:
	}
}

// settle waits until the worker has handled everything the reader queued.
func (s *server) settle(tb testing.TB) {
	tb.Helper()
	condtest.WaitFor(tb, 5*time.Second, "worker idle", func() bool { return s.dev.queued.Load() == s.dev.processed.Load() })
}

// forwarder plays a gateway over a real loopback socket.
type forwarder struct {
	conn *net.UDPConn
	eui  gwmp.EUI
}

func newForwarder(tb testing.TB, s *server, eui gwmp.EUI) *forwarder {
	tb.Helper()
	c, err := net.DialUDP("udp", nil, s.addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &forwarder{conn: c, eui: eui}
}

func (f *forwarder) send(tb testing.TB, b []byte) {
	tb.Helper()
	if _, err := f.conn.Write(b); err != nil {
		tb.Fatal(err)
	}
}

// recv reads one datagram from the server.
func (f *forwarder) recv(tb testing.TB) gwmp.Packet {
	tb.Helper()
	buf := make([]byte, 65536)
	_ = f.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := f.conn.Read(buf)
	if err != nil {
		tb.Fatalf("forwarder read: %v", err)
	}
	p, err := gwmp.Decode(buf[:n])
	if err != nil {
		tb.Fatalf("forwarder decode %x: %v", buf[:n], err)
	}
	return p
}

func (f *forwarder) push(tb testing.TB, version uint8, token uint16, body string) {
	tb.Helper()
	b := gwmp.AppendHeader(nil, gwmp.Header{Version: version, Token: token, ID: gwmp.PushData, EUI: f.eui})
	f.send(tb, append(b, body...))
}

// pushAcked sends a PUSH_DATA and checks its PUSH_ACK.
func (f *forwarder) pushAcked(tb testing.TB, version uint8, token uint16, body string) {
	tb.Helper()
	f.push(tb, version, token, body)
	f.expectAck(tb, version, token, gwmp.PushAck)
}

func (f *forwarder) expectAck(tb testing.TB, version uint8, token uint16, id gwmp.Identifier) {
	tb.Helper()
	a := f.recv(tb)
	if a.ID != id || a.Token != token || a.Version != version {
		tb.Fatalf("got %v token %d v%d; want %v token %d v%d", a.ID, a.Token, a.Version, id, token, version)
	}
}

func (f *forwarder) pull(tb testing.TB, version uint8, token uint16) {
	tb.Helper()
	f.send(tb, gwmp.AppendHeader(nil, gwmp.Header{Version: version, Token: token, ID: gwmp.PullData, EUI: f.eui}))
	f.expectAck(tb, version, token, gwmp.PullAck)
}

func (f *forwarder) txAck(tb testing.TB, token uint16, body string) {
	tb.Helper()
	b := gwmp.AppendHeader(nil, gwmp.Header{Version: 2, Token: token, ID: gwmp.TxAck, EUI: f.eui})
	f.send(tb, append(b, body...))
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

var errTest = errors.New("test")
