package mqtt

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// PUBACKs arrive in order, and a record is acked in the queue only when
// every record before it is PUBACKed: one PUBACK a broker drops would hold
// the whole window until the connection is declared dead (twice the
// keepalive plus the connect timeout), letting one record through per stall.
// So a PUBLISH unanswered for DupAfter is sent again on the same
// connection, with its packet identifier and the DUP flag (MQTT 3.1.1
// §3.3.1.1, §4.3.2); the broker's PUBACK for it completes paho's token as
// the first one would have. paho has no call for that, so the uplink dials
// the connection itself and writes the PUBLISH between paho's packets.
//
// A PUBACK that was only late arrives twice (for the first send and the
// re-send). The second finds no token and paho drops it; it cannot complete
// another record's token, since paho issues packet ids round-robin over all
// 65,535 and the two PUBACKs come back to back.

// defaultDupAfter is the wait for a PUBACK before a DUP re-send: far
// beyond a broker's answer on any working link, and a spurious re-send only
// costs a duplicate, which receivers drop.
const defaultDupAfter = 5 * time.Second

// maxDups is how often one PUBLISH is re-sent on a connection before the
// PUBACK watchdog gives up on the connection.
const maxDups = 3

// dupConn is the connection paho writes to. paho writes every packet with
// one Write call; the lock keeps a re-sent PUBLISH from landing inside one.
type dupConn struct {
	net.Conn
	mu sync.Mutex
}

func (c *dupConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.Write(b)
}

// resend writes a PUBLISH again with the DUP flag and its packet id. It
// runs in its own goroutine: a dead connection must not block the pump,
// which the keepalive and the PUBACK watchdog tear down.
func (c *dupConn) resend(topic string, id uint16, payload []byte) {
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.Qos, p.Dup, p.TopicName, p.MessageID, p.Payload = 1, true, topic, id, payload
	go p.Write(c)
}

// dial opens the broker connection the way paho would (TCP, or TLS with the
// uplink's configuration) and keeps it where pump can reach it.
func (u *Uplink) dial(conn **dupConn) paho.OpenConnectionFunc {
	return func(server *url.URL, o paho.ClientOptions) (net.Conn, error) {
		d := &net.Dialer{Timeout: u.c.ConnectTimeout}
		var nc net.Conn
		var err error
		switch server.Scheme {
		case "ssl", "tls", "mqtts":
			nc, err = tls.DialWithDialer(d, "tcp", server.Host, o.TLSConfig)
		default:
			nc, err = d.Dial("tcp", server.Host)
		}
		if err != nil {
			return nil, err
		}
		c := &dupConn{Conn: newBatchConn(nc, writeTimeout)}
		*conn = c
		return c, nil
	}
}

// resendStalled re-sends, with DUP, every PUBLISH in the window that has
// waited DupAfter for its PUBACK, and reports the oldest such stall for
// status ("" when none).
func (u *Uplink) resendStalled(conn *dupConn, fl *ring, now time.Time) string {
	stalled := ""
	for i := 0; i < fl.len(); i++ {
		f := &fl.buf[(fl.start+i)%len(fl.buf)]
		select {
		case <-f.tok.Done():
			continue
		default:
		}
		last := f.at
		if !f.dupAt.IsZero() {
			last = f.dupAt
		}
		if now.Sub(last) < u.c.DupAfter {
			continue
		}
		if stalled == "" {
			stalled = fmt.Sprintf("broker has not acknowledged seq %d for %v: re-sent it (DUP)", f.seq, now.Sub(f.at).Round(time.Second))
		}
		pt, ok := f.tok.(*paho.PublishToken)
		if conn == nil || !ok || pt.MessageID() == 0 || f.dups >= maxDups {
			continue
		}
		conn.resend(u.topicOf(f.data), pt.MessageID(), f.data) // the topic the first send used
		f.dups++
		f.dupAt = now
		u.update(func(s *Status) { s.DupResent++ })
	}
	return stalled
}
