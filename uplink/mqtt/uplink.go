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
	"github.com/edge-agent/edge-agent/store"
	"github.com/edge-agent/edge-agent/uplink"
)

var _ uplink.Uplink = (*Uplink)(nil)

const (
	// shutdownGrace bounds the final offline status publish and disconnect,
	// so stopping the daemon never waits on a dead broker.
	shutdownGrace = 2 * time.Second
	// writeTimeout bounds paho handing one packet to its writer goroutine.
	writeTimeout = 10 * time.Second
	// ackFlushEvery is how often PUBACKed records are acked in the queue.
	// Each Ack is a bbolt commit with two fdatasyncs, costly on an SD card;
	// what a crash loses between flushes is only re-sent as duplicates.
	ackFlushEvery = 250 * time.Millisecond
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

	mu        sync.Mutex // guards st, maxSent, connected
	st        Status
	maxSent   uint64 // highest seq ever published by this process
	connected bool   // a connection has succeeded before
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

// queueError marks a failure of the outbox rather than of the network: Run
// returns it instead of retrying, since reconnecting cannot fix a store.
type queueError struct{ err error }

func (e *queueError) Error() string { return e.err.Error() }
func (e *queueError) Unwrap() error { return e.err }

// Run connects, publishes whatever the queue holds beyond its ack mark, and
// keeps going (reconnecting with backoff) until ctx is done, which is a clean
// exit (nil). It returns an error only when the queue itself fails.
func (u *Uplink) Run(ctx context.Context, q uplink.Queue) error {
	failures, next := 0, 0
	for ctx.Err() == nil {
		server := u.c.servers[next%len(u.c.servers)]
		progressed, err := u.session(ctx, q, server)
		if ctx.Err() != nil {
			return nil
		}
		if qe := (*queueError)(nil); errors.As(err, &qe) {
			return err
		}
		if progressed {
			failures = 0
		} else {
			failures++
			next++ // this broker is not working: try the next one
		}
		wait := u.c.backoff(max(failures, 1))
		u.log.Warn("mqtt: "+u.Status().LastError, "server", server.Redacted(), "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	return nil
}

// flight is one PUBLISH awaiting its PUBACK.
type flight struct {
	seq   uint64
	tok   paho.Token
	at    time.Time // for the PUBACK watchdog
	data  []byte    // for a DUP re-send (dup.go)
	dups  int
	dupAt time.Time
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

	if len(u.c.Collectors) > 0 {
		err = u.pumpReceipts(ctx, q, client, lost)
	} else {
		err = u.pump(ctx, q, client, lost, conn)
	}
	if ctx.Err() != nil {
		return true, err
	}
	var qe *queueError
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
		s.Connected, s.Since, s.InFlight = false, now, 0
		s.LastError, s.LastErrorAt = reason, now
		s.Failures++
	})
}

// pump publishes records in seq order with up to Window in flight, acks the
// queue cumulatively as PUBACKs arrive in order, and on ctx done says
// offline and flushes the final ack.
func (u *Uplink) pump(ctx context.Context, q uplink.Queue, client paho.Client, lost <-chan error, conn *dupConn) error {
	acked, err := q.Acked()
	if err != nil {
		return &queueError{fmt.Errorf("mqtt: read ack mark: %w", err)}
	}
	var (
		window    = u.c.Window
		batch     = max(window, minBatch)
		fl        = newRing(window)
		buf       []store.Record
		sent      = acked // highest seq published in this session
		done      = acked // highest seq below which every record is PUBACKed
		stored    = acked // what the queue has been told
		changed   <-chan struct{}
		lastFlush = time.Now()
		watchdog  = time.NewTicker(ackFlushEvery)
		// A PUBACK slower than this means the connection is dead even if
		// TCP has not noticed; paho's keepalive normally fires first.
		pubackLimit = 2*u.c.KeepAlive + u.c.ConnectTimeout
	)
	defer watchdog.Stop()

	flushAck := func() error {
		if done == stored {
			return nil
		}
		if err := q.Ack(done); err != nil {
			return &queueError{fmt.Errorf("mqtt: ack seq %d: %w", done, err)}
		}
		stored, lastFlush = done, time.Now()
		u.update(func(s *Status) { s.AckedSeq = done })
		return nil
	}
	// reap pops every PUBACKed record at the head of the window.
	reap := func() error {
		n := 0
		for fl.len() > 0 {
			f := fl.head()
			select {
			case <-f.tok.Done():
			default:
				u.update(func(s *Status) { s.Acked += uint64(n); s.InFlight = fl.len() })
				return nil
			}
			if err := f.tok.Error(); err != nil {
				u.update(func(s *Status) { s.Acked += uint64(n) })
				return fmt.Errorf("mqtt: publish seq %d: %w: %w", f.seq, ErrConnectionLost, err)
			}
			done = f.seq
			fl.pop()
			n++
		}
		u.update(func(s *Status) { s.Acked += uint64(n); s.InFlight = 0 })
		return nil
	}

	for {
		// Reap first: a PUBACK just in makes room for the fill below.
		if err := reap(); err != nil {
			return err
		}
		if time.Since(lastFlush) >= ackFlushEvery {
			if err := flushAck(); err != nil {
				return err
			}
		}

		// Fill the window.
		changed = nil
		for fl.len() < window {
			if len(buf) == 0 {
				// Changed before Pending: an append between the two still
				// wakes us.
				changed = q.Changed()
				if buf, err = q.Pending(sent, batch); err != nil {
					return &queueError{fmt.Errorf("mqtt: read pending records after seq %d: %w", sent, err)}
				}
				if len(buf) == 0 {
					break
				}
				changed = nil
			}
			rec := buf[0]
			buf = buf[1:]
			tok := client.Publish(u.topicOf(rec.Data), 1, false, rec.Data)
			fl.push(flight{seq: rec.Seq, tok: tok, at: time.Now(), data: rec.Data})
			sent = rec.Seq
			u.update(func(s *Status) {
				s.Published++
				if rec.Seq <= u.maxSent {
					s.Resent++
				}
				u.maxSent = max(u.maxSent, rec.Seq)
				s.InFlight = fl.len()
			})
		}
		if len(buf) == 0 {
			buf = nil // let the batch's backing array go
		}

		var headDone <-chan struct{}
		if fl.len() > 0 {
			headDone = fl.head().tok.Done()
		}
		select {
		case <-ctx.Done():
			return u.shutdown(client, reap, flushAck)
		case err := <-lost:
			_ = reap()
			_ = flushAck()
			return fmt.Errorf("mqtt: %w: %w", ErrConnectionLost, err)
		case <-headDone:
		case <-changed:
		case <-watchdog.C:
			stalled := u.resendStalled(conn, fl, time.Now())
			u.update(func(s *Status) { s.Stalled = stalled })
			if fl.len() > 0 && time.Since(fl.head().at) > pubackLimit {
				return fmt.Errorf("mqtt: no PUBACK for seq %d in %v: %w", fl.head().seq, pubackLimit, ErrTimeout)
			}
			if err := flushAck(); err != nil {
				return err
			}
		}
	}
}

// shutdown acks what the broker has confirmed, replaces the retained status
// with an explicit offline (a clean DISCONNECT discards the Last Will), and
// gives records still in flight a moment to be confirmed.
func (u *Uplink) shutdown(client paho.Client, reap, flushAck func() error) error {
	deadline := time.Now().Add(shutdownGrace)
	tok := client.Publish(u.statusTopic, 1, true, u.statusPayload(stateOffline, u.c.Now(), "shutdown"))
	select {
	case <-tok.Done():
	case <-time.After(time.Until(deadline)):
		u.log.Warn("mqtt: offline status not confirmed before shutdown")
	}
	// The offline status went after the records: once it is PUBACKed, so
	// are they (the broker answers in order), so this reaps nearly all.
	err := errors.Join(reap(), flushAck())
	u.update(func(s *Status) { s.Connected, s.Since, s.InFlight = false, u.c.Now(), 0 })
	if err != nil {
		var qe *queueError
		if errors.As(err, &qe) {
			return err
		}
	}
	return nil
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
		return fmt.Errorf("%w: %w", ErrConnectionLost, err)
	case <-t.C:
		return fmt.Errorf("no answer in %v: %w", limit, ErrTimeout)
	}
}

// ring is a fixed-size FIFO of flights: the window never reallocates.
type ring struct {
	buf      []flight
	start, n int
}

func newRing(size int) *ring { return &ring{buf: make([]flight, size)} }

func (r *ring) len() int      { return r.n }
func (r *ring) head() *flight { return &r.buf[r.start] }

func (r *ring) push(f flight) {
	r.buf[(r.start+r.n)%len(r.buf)] = f
	r.n++
}

func (r *ring) pop() {
	r.buf[r.start] = flight{} // drop the token and its payload
	r.start = (r.start + 1) % len(r.buf)
	r.n--
}
