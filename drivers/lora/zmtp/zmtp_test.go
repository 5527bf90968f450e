package zmtp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// pub is a real ZeroMQ PUB socket (go-zeromq/zmq4), as concentratord binds
// its event socket.
func pub(tb testing.TB, ep string) zmq4.Socket {
	tb.Helper()
	p := zmq4.NewPub(context.Background())
	if err := p.Listen(ep); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// recvUntil publishes msg until the subscriber sees it: PUB drops messages
// until the subscription has arrived, as ZeroMQ does.
func recvUntil(tb testing.TB, p zmq4.Socket, s *Sub, frames ...[]byte) [][]byte {
	tb.Helper()
	got := make(chan [][]byte, 1)
	errc := make(chan error, 1)
	go func() {
		m, err := s.Recv()
		if err != nil {
			errc <- err
			return
		}
		got <- m
	}()
	deadline := time.After(5 * time.Second)
	for {
		if err := p.Send(zmq4.NewMsgFrom(frames...)); err != nil {
			tb.Fatal(err)
		}
		select {
		case m := <-got:
			return m
		case err := <-errc:
			tb.Fatal(err)
		case <-deadline:
			tb.Fatal("no message within 5 s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestAgainstZmq4(t *testing.T) {
	for _, ep := range []string{"ipc://" + filepath.Join(t.TempDir(), "event"), "tcp://127.0.0.1:" + freePort(t)} {
		t.Run(ep[:3], func(t *testing.T) {
			p := pub(t, ep)
			s, err := Dial(context.Background(), ep, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if m := recvUntil(t, p, s, []byte("first")); len(m) != 1 || string(m[0]) != "first" {
				t.Fatalf("got %q", m)
			}
			// Now subscribed: every message arrives, in order, multi-frame
			// and large ones included.
			big := bytes.Repeat([]byte{0xAB}, 70_000)
			go func() {
				for i := range 100 {
					_ = p.Send(zmq4.NewMsgFrom([]byte(fmt.Sprintf("m%03d", i))))
				}
				_ = p.Send(zmq4.NewMsgFrom([]byte("up"), big))
			}()
			for i := range 100 {
				m, err := s.Recv()
				if err != nil {
					t.Fatal(err)
				}
				if string(m[0]) == "first" {
					m, err = s.Recv() // a late duplicate of the probe
					if err != nil {
						t.Fatal(err)
					}
				}
				if len(m) != 1 || string(m[0]) != fmt.Sprintf("m%03d", i) {
					t.Fatalf("message %d = %q", i, m)
				}
			}
			m, err := s.Recv()
			if err != nil || len(m) != 2 || string(m[0]) != "up" || !bytes.Equal(m[1], big) {
				t.Fatalf("multi-frame: %d frames, %v", len(m), err)
			}
			// The publisher goes away: Recv fails, so the caller reconnects.
			p.Close()
			if _, err := s.Recv(); err == nil {
				t.Fatal("Recv after the publisher closed = nil error")
			}
		})
	}
}

func TestRefusesNonPub(t *testing.T) {
	ep := "ipc://" + filepath.Join(t.TempDir(), "command")
	rep := zmq4.NewRep(context.Background())
	if err := rep.Listen(ep); err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	if _, err := Dial(context.Background(), ep, nil); !errors.Is(err, ErrProtocol) {
		t.Fatalf("Dial to a REP socket = %v; want ErrProtocol", err)
	}
}

func TestRefusesGarbage(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			_, _ = c.Write(bytes.Repeat([]byte("HTTP/1.1 400 Bad\r\n"), 8))
			time.Sleep(time.Second)
			c.Close()
		}
	}()
	if _, err := Dial(context.Background(), "tcp://"+l.Addr().String(), nil); !errors.Is(err, ErrProtocol) {
		t.Fatalf("Dial to a non-ZMTP peer = %v; want ErrProtocol", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	defer silent.Close()
	if _, err := Dial(ctx, "tcp://"+silent.Addr().String(), nil); err == nil {
		t.Fatal("Dial to a silent peer returned no error")
	}
	for _, ep := range []string{"inproc://x", "/tmp/x", "ipc://"} {
		if _, err := Dial(context.Background(), ep, nil); !errors.Is(err, ErrEndpoint) {
			t.Errorf("Dial(%q) = %v; want ErrEndpoint", ep, err)
		}
	}
}

// TestFrameLimits drives Recv with hand-made frames: a PING is answered, a
// frame beyond MaxMessage is refused before it is allocated.
func TestFrameLimits(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	s := &Sub{conn: b, r: bufio.NewReader(b)}
	go func() {
		body := append(command("PING"), 0, 10, 'c', 't', 'x', 'x', 'y') // TTL 1 s, context "ctxxy"
		_, _ = a.Write(append([]byte{flagCommand, byte(len(body))}, body...))
	}()
	pong := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 64)
		n, _ := a.Read(buf)
		pong <- buf[:n]
		huge := []byte{flagLong, 0, 0, 0, 0, 0x7f, 0, 0, 0}
		_, _ = a.Write(huge)
	}()
	_, err := s.Recv()
	if p := <-pong; !bytes.Contains(p, []byte("PONG")) || !bytes.HasSuffix(p, []byte("ctxxy")) {
		t.Errorf("PING answered with %q", p)
	}
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Recv of a 2 TiB frame = %v; want ErrTooLarge", err)
	}
}

func freePort(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

type discardConn struct{ net.Conn }

func (discardConn) Write(b []byte) (int, error) { return len(b), nil }
func (discardConn) Close() error                { return nil }

// FuzzRecv: whatever a peer sends after the handshake, Recv returns a
// message or an error, never panics, and never holds more than MaxMessage.
func FuzzRecv(f *testing.F) {
	f.Add([]byte{0, 3, 'a', 'b', 'c'})
	f.Add([]byte{1, 1, 'x', 0, 0})
	f.Add(append([]byte{flagCommand, 7}, append(command("PING"), 0, 1)...))
	f.Add([]byte{flagLong, 0, 0, 0, 0, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &Sub{conn: discardConn{}, r: bufio.NewReader(bytes.NewReader(b))}
		for range 8 {
			m, err := s.Recv()
			if err != nil {
				return
			}
			total := 0
			for _, fr := range m {
				total += len(fr)
			}
			if total > MaxMessage {
				t.Fatalf("message of %d bytes", total)
			}
		}
	})
}
