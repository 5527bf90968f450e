package mqtttest

import (
	"bufio"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// PubackDropper is a TCP proxy in front of a broker that drops every nth
// PUBACK on its way to the client, as a lossy broker or middlebox would.
type PubackDropper struct {
	ln      net.Listener
	every   int64
	seen    atomic.Int64
	dropped atomic.Int64
	wg      sync.WaitGroup
}

// DropPubacks starts a proxy to the broker at addr (host:port) that drops
// every nth PUBACK, until the end of the test.
func DropPubacks(tb testing.TB, addr string, every int) *PubackDropper {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &PubackDropper{ln: ln, every: int64(every)}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", addr)
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

// URL is the proxy's tcp:// URL, to give the client instead of the broker's.
func (p *PubackDropper) URL() string { return "tcp://" + p.ln.Addr().String() }

// Dropped is how many PUBACKs the proxy has dropped.
func (p *PubackDropper) Dropped() int64 { return p.dropped.Load() }

// filter copies MQTT packets from the broker to the client, leaving out
// every nth PUBACK (fixed header 0x40).
func (p *PubackDropper) filter(dst io.Writer, src io.Reader) {
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
		if h == 0x40 && p.seen.Add(1)%p.every == 0 {
			p.dropped.Add(1)
			continue
		}
		if _, err := dst.Write(append(pkt, body...)); err != nil {
			return
		}
	}
}
