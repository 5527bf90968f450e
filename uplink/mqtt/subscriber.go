package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Subscriber receives records from every device under the topic prefix, for
// the collector (edge-collector). Create it with NewSubscriber.
type Subscriber struct {
	c      *config
	log    *slog.Logger
	handle AsyncHandler
	topic  string
	prefix string // topic prefix plus "/", stripped to find the device id

	mu     sync.Mutex
	client paho.Client // the live connection, for Publish; nil between sessions
}

// AsyncHandler takes one record and calls ack exactly once, from any
// goroutine, when it is done with it: ack(nil) acknowledges the record to
// the broker; ack(err) drops the connection without acknowledging it (nor
// anything after it), so the broker delivers it again. Acks should come in
// arrival order (MQTT 3.1.1 §4.6); a handler that commits in batches does.
type AsyncHandler func(deviceID string, payload []byte, ack func(error))

// NewSubscriber validates o (which needs a fixed ClientID; DeviceID is not
// used) and returns a Subscriber that hands each record to handle. handle
// runs on one goroutine, in arrival order; a record is acknowledged to the
// broker only when handle returns nil. On an error the connection is dropped
// without acking, and the broker delivers the record again on the next one.
func NewSubscriber(o Opts, handle func(deviceID string, payload []byte) error) (*Subscriber, error) {
	if o.ClientID == "" {
		return nil, fmt.Errorf("mqtt: subscriber needs a fixed client_id: the broker keeps its session (and unacked records) under it: %w", ErrInvalidConfig)
	}
	if handle == nil {
		return nil, fmt.Errorf("mqtt: subscriber needs a handler: %w", ErrInvalidConfig)
	}
	return NewAsyncSubscriber(o, func(d string, p []byte, ack func(error)) { ack(handle(d, p)) })
}

// NewAsyncSubscriber is NewSubscriber with a handler that may acknowledge
// later, so a collector can take many records into one database commit
// while the broker keeps delivering. With o.SharedGroup set it subscribes to
// $share/<group>/<prefix>/+/att/#, so the collectors of one group split the
// stream between them (mosquitto ≥ 1.6, EMQX, VerneMQ).
func NewAsyncSubscriber(o Opts, handle AsyncHandler) (*Subscriber, error) {
	if o.ClientID == "" {
		return nil, fmt.Errorf("mqtt: subscriber needs a fixed client_id: the broker keeps its session (and unacked records) under it: %w", ErrInvalidConfig)
	}
	if handle == nil {
		return nil, fmt.Errorf("mqtt: subscriber needs a handler: %w", ErrInvalidConfig)
	}
	if o.SharedGroup != "" {
		if err := checkTopicLevel("shared group", o.SharedGroup, false); err != nil {
			return nil, err
		}
	}
	c, err := load(o, false)
	if err != nil {
		return nil, err
	}
	// "att/#" matches <prefix>/<device>/att and <prefix>/<device>/att/<kind>.
	topic := c.TopicPrefix + "/+/att/#"
	if o.SharedGroup != "" {
		topic = "$share/" + o.SharedGroup + "/" + topic
	}
	return &Subscriber{
		c:      c,
		log:    c.Logger.With("component", "uplink/mqtt/subscriber"),
		handle: handle,
		topic:  topic,
		prefix: c.TopicPrefix + "/",
	}, nil
}

// Publish sends payload on topic at QoS 1 over the current connection
// without waiting for the PUBACK (a collector's receipts: a lost one only
// means the device re-sends and gets another). It fails when not connected.
func (s *Subscriber) Publish(topic string, payload []byte) error {
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	if c == nil || !c.IsConnectionOpen() {
		return fmt.Errorf("mqtt: publish %s: %w", topic, ErrNotConnected)
	}
	c.Publish(topic, 1, false, payload)
	return nil
}

// Run receives until ctx is done (a clean exit, nil), reconnecting with
// backoff whenever the connection fails, drops, or a handler fails.
func (s *Subscriber) Run(ctx context.Context) error {
	retries, next := s.c.newBackoff(), 0
	for ctx.Err() == nil {
		server := s.c.servers[next%len(s.c.servers)]
		progressed, err := s.session(ctx, server)
		if ctx.Err() != nil {
			return nil
		}
		if progressed {
			retries.Reset()
		} else {
			next++
		}
		wait := retries.Next()
		s.log.Warn("mqtt subscriber reconnecting", "server", server.Redacted(), "err", err, "retry_in", wait)
		if retries.Wait(ctx, wait) != nil {
			return nil
		}
	}
	return nil
}

// session is one connection. progressed reports whether the handler accepted
// at least one record or the subscription was confirmed.
func (s *Subscriber) session(ctx context.Context, server *url.URL) (bool, error) {
	lost := make(chan error, 1)
	// failed is closed by the first failing handler; later messages of this
	// connection are left unacked too, so the broker keeps them in order.
	failed := make(chan error, 1)
	var broken atomic.Bool
	var handled atomic.Uint64
	onMessage := func(_ paho.Client, m paho.Message) {
		if broken.Load() {
			return
		}
		device, ok := s.deviceOf(m.Topic())
		if !ok {
			s.log.Warn("mqtt: ignoring message on unexpected topic", "topic", m.Topic())
			m.Ack()
			return
		}
		var once atomic.Bool
		s.handle(device, m.Payload(), func(err error) {
			if once.Swap(true) || broken.Load() {
				return
			}
			if err != nil {
				broken.Store(true)
				select {
				case failed <- fmt.Errorf("mqtt: handle record from %s: %w", device, err):
				default:
				}
				return
			}
			m.Ack()
			handled.Add(1)
		})
	}

	o := baseOptions(s.c, server)
	o.SetCleanSession(false)
	o.SetAutoAckDisabled(true)
	o.SetOrderMatters(true)
	// A resumed session delivers before SUBSCRIBE is answered: without a
	// default handler paho would drop those records.
	o.SetDefaultPublishHandler(onMessage)
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		select {
		case lost <- err:
		default:
		}
	})
	client := paho.NewClient(o)
	if err := waitToken(ctx, client.Connect(), s.c.ConnectTimeout+time.Second, nil); err != nil {
		client.Disconnect(0)
		if ctx.Err() != nil {
			return false, nil
		}
		return false, fmt.Errorf("mqtt: connect to %s: %s: %w", server.Redacted(), s.c.explain(err), err)
	}
	defer client.Disconnect(250)
	s.mu.Lock()
	s.client = client
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.client = nil
		s.mu.Unlock()
	}()
	s.log.Info("mqtt subscriber connected", "server", server.Redacted(), "topic", s.topic)

	sub := client.Subscribe(s.topic, 1, onMessage)
	if err := waitToken(ctx, sub, s.c.ConnectTimeout, lost); err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		return false, fmt.Errorf("mqtt: subscribe %s: %w", s.topic, err)
	}
	if st, ok := sub.(*paho.SubscribeToken); ok {
		if qos := st.Result()[s.topic]; qos > 2 { // 0x80 is failure (MQTT 3.1.1 §3.9.3)
			return false, fmt.Errorf("mqtt: subscribe %s: %w", s.topic, ErrSubscribeRefused)
		}
	}

	select {
	case <-ctx.Done():
		return true, nil
	case err := <-lost:
		return true, fmt.Errorf("mqtt: %w: %w", ErrConnectionLost, err)
	case err := <-failed:
		// Disconnect (deferred) without acking: the broker redelivers.
		return handled.Load() > 0, err
	}
}

// deviceOf extracts the device id from {prefix}/{device}/att or
// {prefix}/{device}/att/{kind…}.
func (s *Subscriber) deviceOf(topic string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, s.prefix)
	if !ok {
		return "", false
	}
	device, tail, ok := strings.Cut(rest, "/")
	if !ok || device == "" || (tail != "att" && !strings.HasPrefix(tail, "att/")) {
		return "", false
	}
	return device, true
}
