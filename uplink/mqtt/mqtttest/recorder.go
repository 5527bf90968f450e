package mqtttest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Message is one message a Recorder received.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
}

// Recorder is a plain paho subscriber that keeps every message it gets, for
// asserting what a broker delivered.
type Recorder struct {
	client paho.Client

	mu   sync.Mutex
	msgs []Message
}

// Record subscribes to topic at QoS 1 on the (unauthenticated, plain TCP)
// broker at url and records until the end of the test. Its session is
// persistent, so on a broker with persistence nothing published while the
// recorder was reconnecting is missed.
func Record(tb testing.TB, url, topic string) *Recorder {
	tb.Helper()
	r := &Recorder{}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("recorder-%d", time.Now().UnixNano())).
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond).
		SetProtocolVersion(4).SetOrderMatters(true)
	handler := func(_ paho.Client, m paho.Message) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.msgs = append(r.msgs, Message{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...), Retained: m.Retained()})
	}
	// Subscribe again after every reconnect, in case the broker forgot the
	// session.
	// Not on the first connect: a second SUBSCRIBE would deliver retained
	// messages twice.
	var connects atomic.Int32
	o.SetOnConnectHandler(func(c paho.Client) {
		if connects.Add(1) > 1 {
			c.Subscribe(topic, 1, handler)
		}
	})
	r.client = paho.NewClient(o)
	wait(tb, "recorder connect "+url, r.client.Connect())
	tb.Cleanup(func() { r.client.Disconnect(0) })
	// Synchronously, so the test does not publish before the subscription
	// exists.
	wait(tb, "recorder subscribe "+topic, r.client.Subscribe(topic, 1, handler))
	return r
}

// Messages returns a copy of what has arrived so far.
func (r *Recorder) Messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.msgs...)
}

// WaitFor polls until cond holds for the messages so far, failing the test
// after timeout.
func (r *Recorder) WaitFor(tb testing.TB, timeout time.Duration, what string, cond func([]Message) bool) []Message {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := r.Messages()
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			tb.Fatalf("mqtttest: timed out after %v waiting for %s (%d messages so far)", timeout, what, len(m))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wait(tb testing.TB, what string, tok paho.Token) {
	tb.Helper()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			tb.Fatalf("mqtttest: %s: %v", what, err)
		}
	case <-time.After(10 * time.Second):
		tb.Fatalf("mqtttest: %s: timed out", what)
	}
}
