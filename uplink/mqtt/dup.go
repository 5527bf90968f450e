package mqtt

import (
	"crypto/tls"
	"net"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/edge-agent/edge-agent/uplink"
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
// runs in its own goroutine: a dead connection must not block the delivery
// window, which the keepalive and the PUBACK watchdog tear down.
func (c *dupConn) resend(topic string, id uint16, payload []byte) {
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.Qos, p.Dup, p.TopicName, p.MessageID, p.Payload = 1, true, topic, id, payload
	go p.Write(c)
}

// dial opens the broker connection the way paho would (TCP, or TLS with the
// uplink's configuration) and keeps it where deliver can reach it.
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

// dup writes f again with DUP and the packet id of its first send, to the
// topic that send used.
func (u *Uplink) dup(conn *dupConn, f *uplink.Flight) {
	pt, ok := f.Handle.(*paho.PublishToken)
	if conn == nil || !ok || pt.MessageID() == 0 {
		return
	}
	conn.resend(u.topicOf(f.Data), pt.MessageID(), f.Data)
	u.update(func(s *Status) { s.DupResent++ })
}
