package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/uplink"
)

var _ uplink.Uplink = (*Uplink)(nil)

const (
	// shutdownGrace bounds the final offline status publish and disconnect,
	// so stopping the daemon never waits on a dead broker.
	shutdownGrace = 2 * time.Second
	// writeTimeout bounds paho handing one packet to its writer goroutine.
	writeTimeout = 10 * time.Second
	// minBatch is the smallest Pending read: each read is a bbolt
	// transaction, so small windows still read in useful chunks.
	minBatch = 256
)

// Uplink publishes the outbox to an MQTT broker. Create it with New.
type Uplink struct {
	c           *config
	log         *slog.Logger
	attTopic    string
	statusTopic string

	w *uplink.Window

	mu        sync.Mutex // guards st, connected
	st        Status
	connected bool // a connection has succeeded before
}

// New validates o, reads its TLS files and returns an Uplink ready to Run.
func New(o Opts) (*Uplink, error) {
	c, err := load(o, true)
	if err != nil {
		return nil, err
	}
	u := &Uplink{
		c:           c,
		log:         c.Logger.With("component", "uplink/mqtt"),
		attTopic:    c.TopicPrefix + "/" + c.DeviceID + "/att",
		statusTopic: c.TopicPrefix + "/" + c.DeviceID + "/status",
	}
	wo := uplink.WindowOpts{Name: "mqtt", Size: c.Window, Batch: max(c.Window, minBatch), Logger: u.log}
	if len(c.Collectors) > 0 {
		wo.MinReceipts, wo.ResendAfter, wo.ResendMax = c.MinReceipts, c.ResendAfter, c.ResendMax
	} else {
		// A PUBLISH unanswered for DupAfter goes again with DUP (dup.go),
		// maxDups times; a PUBACK slower than GiveUp means the connection
		// is dead even if TCP has not noticed (the keepalive normally fires
		// first).
		wo.ResendAfter, wo.MaxResends = c.DupAfter, maxDups
		wo.GiveUp, wo.GiveUpErr = 2*c.KeepAlive+c.ConnectTimeout, ErrTimeout
	}
	u.w = uplink.NewWindow(wo)
	u.st.ClientCertExpiry = c.certExpiry
	// Not an error: the clock of a board without an RTC may be wrong at boot,
	// and the broker is the judge. But say it before it bites.
	if !c.certExpiry.IsZero() {
		if left := c.certExpiry.Sub(c.Now()); left <= 0 {
			u.log.Warn("mqtt: client certificate has expired: renew cert_file, or check the device clock", "expired", c.certExpiry)
		} else if left < 30*24*time.Hour {
			u.log.Warn("mqtt: client certificate expires soon: renew cert_file", "expires", c.certExpiry)
		}
	}
	return u, nil
}

// Name is the uplink's key in the store's acknowledgement table.
func (u *Uplink) Name() string { return "mqtt" }

// topicOf is where a record goes: {prefix}/{device}/att/{kind}, so that a
// subscriber can take only the kinds it needs ({prefix}/+/att/gnss.fix)
// or everything ({prefix}/+/att/#, which also matches the single topic).
func (u *Uplink) topicOf(data []byte) string {
	if u.c.SingleTopic {
		return u.attTopic
	}
	return u.attTopic + "/" + KindTopic(data)
}

// KindTopic is the topic level for a record's kind; bytes not shaped like a
// record, or whose kind cannot be a topic level, go to "unknown". It only
// peeks at the kind (a full Decode per PUBLISH was a fifth of the daemon's
// CPU at 1,000 records/s): the receiver decodes and verifies.
func KindTopic(data []byte) string {
	k, ok := attest.PeekKind(data)
	if !ok || k == "" || strings.ContainsAny(k, "/+#\x00") || len(k) > 64 {
		return "unknown"
	}
	return k
}

// Run connects, publishes whatever the queue holds beyond its ack mark, and
// keeps going (reconnecting with backoff) until ctx is done, which is a clean
// exit (nil). It returns an error only when the queue itself fails.
func (u *Uplink) Run(ctx context.Context, q uplink.Queue) error {
	retries, next := u.c.newBackoff(), 0
	for ctx.Err() == nil {
		server := u.c.servers[next%len(u.c.servers)]
		progressed, err := u.session(ctx, q, server)
		if ctx.Err() != nil {
			return nil
		}
		if qe := (*uplink.QueueError)(nil); errors.As(err, &qe) {
			return err
		}
		if progressed {
			retries.Reset()
		} else {
			next++ // this broker is not working: try the next one
		}
		wait := retries.Next()
		u.log.Warn("mqtt: "+u.Status().LastError, "server", server.Redacted(), "err", err, "retry_in", wait)
		if retries.Wait(ctx, wait) != nil {
			return nil
		}
	}
	return nil
}

// session runs one connection from CONNECT to its end. progressed reports
// whether the broker acknowledged anything, which resets the backoff.
func (u *Uplink) session(ctx context.Context, q uplink.Queue, server *url.URL) (progressed bool, err error) {
	u.update(func(s *Status) { s.Server = server.Redacted() })
	lost := make(chan error, 1)
	var conn *dupConn // set by the dialer during Connect
	opts := u.clientOptions(server, lost)
	opts.SetCustomOpenConnectionFn(u.dial(&conn))
	client := paho.NewClient(opts)
	if err := waitToken(ctx, client.Connect(), u.c.ConnectTimeout+time.Second, nil); err != nil {
		client.Disconnect(0)
		if ctx.Err() != nil {
			return false, nil
		}
		why := u.c.explain(err)
		var netErr net.Error
		if conn != nil && (errors.Is(err, ErrTimeout) || errors.As(err, &netErr) && netErr.Timeout()) {
			// TCP (and TLS) went through: the host is reachable.
			why = "the server accepted the connection but did not answer the MQTT CONNECT in time — is it an MQTT broker on that port, and does it want TLS?"
		}
		u.failed(why)
		return false, fmt.Errorf("mqtt: connect to %s: %w", server.Redacted(), err)
	}
	defer client.Disconnect(250)

	since := u.c.Now()
	u.update(func(s *Status) {
		if u.connected {
			s.Reconnects++
		}
		u.connected = true
		s.Connected, s.Server, s.Since, s.LastError, s.LastErrorAt = true, server.Redacted(), since, "", time.Time{}
	})
	u.log.Info("mqtt connected", "server", server.Redacted(), "client_id", u.c.ClientID)

	online := client.Publish(u.statusTopic, 1, true, u.statusPayload(stateOnline, since, ""))
	if err := waitToken(ctx, online, u.c.ConnectTimeout, lost); err != nil {
		if ctx.Err() != nil {
			u.update(func(s *Status) { s.Connected = false })
			return false, nil
		}
		u.failed("connection lost: " + err.Error())
		return false, fmt.Errorf("mqtt: publish online status: %w", err)
	}

	err = u.deliver(ctx, q, client, lost, conn)
	if ctx.Err() != nil {
		return true, err
	}
	var qe *uplink.QueueError
	if !errors.As(err, &qe) {
		u.failed("connection lost: " + err.Error())
	}
	return true, err
}

// failed records why a connection attempt or connection ended; Run logs it
// with the retry delay.
func (u *Uplink) failed(reason string) {
	now := u.c.Now()
	u.update(func(s *Status) {
		s.Connected, s.Since = false, now
		s.LastError, s.LastErrorAt = reason, now
		s.Failures++
	})
}

// deliver runs the delivery window over one connection: PUBLISH at QoS 1,
// confirmed by the broker's PUBACK (stalled ones re-sent with DUP on the
// same connection) or, with collectors, by their receipts (PUBACKs then only
// pace the connection, and what stays unreceipted is published again). On
// ctx done it replaces the retained status with an explicit offline (a
// clean DISCONNECT discards the Last Will) and gives records still in
// flight a moment to be confirmed.
func (u *Uplink) deliver(ctx context.Context, q uplink.Queue, client paho.Client, lost <-chan error, conn *dupConn) error {
	l := uplink.Link{
		Lost: lost,
		Send: func(fs []*uplink.Flight) error {
			for _, f := range fs {
				if f.Tries > 1 && len(u.c.Collectors) == 0 {
					u.dup(conn, f)
					continue
				}
				f.Handle = client.Publish(u.topicOf(f.Data), 1, false, f.Data)
			}
			return nil
		},
		Confirmed: func(f *uplink.Flight) (bool, error) {
			tok := f.Handle.(paho.Token)
			select {
			case <-tok.Done():
			default:
				return false, nil
			}
			if err := tok.Error(); err != nil {
				return false, fmt.Errorf("publish seq %d: %w: %w", f.Seq, ErrConnectionLost, err)
			}
			return true, nil
		},
		Wake: func(head *uplink.Flight) <-chan struct{} { return head.Handle.(paho.Token).Done() },
		Drain: func() {
			tok := client.Publish(u.statusTopic, 1, true, u.statusPayload(stateOffline, u.c.Now(), "shutdown"))
			t := time.NewTimer(shutdownGrace)
			defer t.Stop()
			select {
			case <-tok.Done():
			case <-t.C:
				u.log.Warn("mqtt: offline status not confirmed before shutdown")
			}
			// The offline status went after the records: once it is
			// PUBACKed, so are they (the broker answers in order).
		},
	}
	if len(u.c.Collectors) > 0 {
		l.Confirmed, l.Wake = nil, nil
		if err := u.subscribeReceipts(ctx, client, lost); err != nil || ctx.Err() != nil {
			return err
		}
	}
	err := u.w.Run(ctx, q, l)
	if ctx.Err() != nil {
		u.update(func(s *Status) { s.Connected, s.Since = false, u.c.Now() })
	}
	return err
}

// clientOptions builds a fresh paho configuration for one connection.
func (u *Uplink) clientOptions(server *url.URL, lost chan<- error) *paho.ClientOptions {
	o := baseOptions(u.c, server)
	o.SetCleanSession(true)
	o.SetBinaryWill(u.statusTopic, u.statusPayload(stateOffline, time.Time{}, "connection lost"), 1, true)
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		select {
		case lost <- err:
		default:
		}
	})
	return o
}

// baseOptions is what the Uplink and the Subscriber share. paho's own
// reconnecting is off: Run owns retries so it can back off with jitter,
// rotate servers and re-send from the store; the memory store because the
// bbolt outbox is the durable copy (paho's FileStore neither fsyncs nor
// survives I/O errors).
func baseOptions(c *config, server *url.URL) *paho.ClientOptions {
	o := paho.NewClientOptions()
	o.AddBroker(server.String())
	o.SetClientID(c.ClientID)
	o.SetUsername(c.Username)
	o.SetPassword(c.Password)
	o.SetProtocolVersion(4) // no silent retry with 3.1, which doubles every refused attempt
	o.SetKeepAlive(c.KeepAlive)
	o.SetPingTimeout(min(c.KeepAlive, 10*time.Second))
	o.SetConnectTimeout(c.ConnectTimeout)
	o.SetDialer(&net.Dialer{Timeout: c.ConnectTimeout})
	o.SetWriteTimeout(writeTimeout)
	o.SetAutoReconnect(false)
	o.SetConnectRetry(false)
	o.SetStore(paho.NewMemoryStore())
	if c.tls != nil {
		o.SetTLSConfig(c.tls.Clone())
	}
	return o
}

// waitToken waits for tok without paho's Wait, which can hang forever when a
// connection dies at the wrong moment.
func waitToken(ctx context.Context, tok paho.Token, limit time.Duration, lost <-chan error) error {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case err := <-lost:
		return err
	case <-t.C:
		return fmt.Errorf("no answer in %v: %w", limit, ErrTimeout)
	}
}
