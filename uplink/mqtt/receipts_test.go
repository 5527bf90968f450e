package mqtt_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edge-agent/edge-agent/collect/fleet"
	"github.com/edge-agent/edge-agent/uplink/mqtt"
	"github.com/edge-agent/edge-agent/uplink/mqtt/mqtttest"
	"github.com/edge-agent/edge-agent/uplink/uplinktest"
)

// testReceipt is a stand-in receipt format: the uplink only sees what
// OpenReceipt returns, so the signature check is the opener's business
// (the daemon passes p2p.OpenReceipt's; collect tests that one).
type testReceipt struct {
	Collector, Device string
	Chain             [16]byte
	From, To          uint64
	Forged            bool
}

func openTest(raw []byte) (*mqtt.Receipt, error) {
	var r testReceipt
	if err := json.Unmarshal(raw, &r); err != nil || r.Forged {
		return nil, errors.New("bad receipt")
	}
	return &mqtt.Receipt{Collector: r.Collector, Device: r.Device, Chains: map[[16]byte][][2]uint64{r.Chain: {{r.From, r.To}}}}, nil
}

func publisher(t *testing.T, url string) func(topic string, v any) {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprint("pub-", time.Now().UnixNano())).SetProtocolVersion(4))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return func(topic string, v any) {
		b, _ := json.Marshal(v)
		if tok := c.Publish(topic, 1, false, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
}

// TestReceiptsAreTheOnlyAck: with collectors set, the broker's PUBACK moves
// nothing out of the outbox; receipts from untrusted collectors, for other
// devices or that do not verify move nothing either; records without a
// receipt are published again; a trusted collector's receipt acks exactly
// the seqs it names.
func TestReceiptsAreTheOnlyAck(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Config{})
	d, err := fleet.NewDevice(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	q := uplinktest.NewQueue()
	for range 20 {
		raw, _, err := d.Next(time.Now(), 8)
		if err != nil {
			t.Fatal(err)
		}
		q.Add(raw)
	}
	rec := mqtttest.Record(t, b.URL(), "edge-agent/"+d.ID()+"/att/#")
	o := mqtt.DefaultOpts()
	o.Servers, o.DeviceID = []string{b.URL()}, d.ID()
	o.Collectors, o.MinReceipts = []string{"collector-a", "collector-b"}, 1
	o.ResendAfter, o.ResendMax = time.Second, time.Second
	o.OpenReceipt = openTest
	u, err := mqtt.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx, q) }()
	defer func() { cancel(); <-done }()

	rec.WaitFor(t, 20*time.Second, "the records and a re-send", func(m []mqtttest.Message) bool { return len(m) >= 25 })
	if a, _ := q.Acked(); a != 0 {
		t.Fatalf("acked %d on PUBACKs alone, want 0", a)
	}
	pub := publisher(t, b.URL())
	topic := "edge-agent/" + d.ID() + "/receipt"
	pub(topic, testReceipt{Collector: "mallory", Device: d.ID(), Chain: d.Chain(), From: 1, To: 20})
	pub(topic, testReceipt{Collector: "collector-a", Device: "someone-else", Chain: d.Chain(), From: 1, To: 20})
	pub(topic, testReceipt{Collector: "collector-a", Device: d.ID(), Chain: d.Chain(), From: 1, To: 20, Forged: true})
	pub(topic, testReceipt{Collector: "collector-a", Device: d.ID(), Chain: [16]byte{9}, From: 1, To: 20}) // another chain
	deadline := time.Now().Add(10 * time.Second)
	for u.Status().ReceiptsRefused < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(600 * time.Millisecond) // more than one ack flush
	if a, _ := q.Acked(); a != 0 || u.Status().ReceiptsRefused < 3 {
		t.Fatalf("acked %d after untrusted, misdirected and forged receipts (refused %d), want 0", a, u.Status().ReceiptsRefused)
	}
	pub(topic, testReceipt{Collector: "collector-b", Device: d.ID(), Chain: d.Chain(), From: 1, To: 10})
	q.WaitAcked(t, 10, 10*time.Second)
	time.Sleep(600 * time.Millisecond)
	if a, _ := q.Acked(); a != 10 {
		t.Fatalf("acked %d after a receipt for 1-10, want 10", a)
	}
	pub(topic, testReceipt{Collector: "collector-a", Device: d.ID(), Chain: d.Chain(), From: 11, To: 20})
	q.WaitAcked(t, 20, 10*time.Second)
	// Taken: the other-chain one (it names nothing here) and the two that acked.
	if st := u.Status(); st.Receipts != 3 || st.Resent == 0 {
		t.Fatalf("status %+v: want 3 receipts taken and re-sends", st)
	}
}

// TestSharedSubscriptionSplits: two subscribers of one shared group split
// the stream, each record reaching exactly one; per-kind topics
// (<prefix>/<device>/att/<kind>) are received too.
func TestSharedSubscriptionSplits(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Config{})
	type got struct{ sub, device, payload string }
	ch := make(chan got, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range 2 {
		o := mqtt.DefaultOpts()
		o.Servers, o.ClientID, o.SharedGroup = []string{b.URL()}, fmt.Sprint("collector-", i), "fleet"
		s, err := mqtt.NewAsyncSubscriber(o, func(dev string, p []byte, ack func(error)) {
			ch <- got{fmt.Sprint(i), dev, string(p)}
			ack(nil)
		})
		if err != nil {
			t.Fatal(err)
		}
		go s.Run(ctx)
	}
	// Wait until both are subscribed: a probe message each way is not
	// possible with a shared group, so give them a moment, then check the
	// broker delivered to both.
	time.Sleep(time.Second)
	pub := publisher(t, b.URL())
	for i := range 200 {
		topic := "edge-agent/dev-a/att"
		if i%2 == 1 {
			topic = "edge-agent/dev-b/att/gnss.fix"
		}
		pub(topic, i)
	}
	seen := map[string]int{}
	per := map[string]int{}
	deadline := time.After(20 * time.Second)
	for len(seen) < 200 {
		select {
		case g := <-ch:
			seen[g.payload]++
			per[g.sub]++
			if (g.device != "dev-a" && g.device != "dev-b") || seen[g.payload] > 1 {
				t.Fatalf("got %+v (seen %d times)", g, seen[g.payload])
			}
		case <-deadline:
			t.Fatalf("received %d of 200", len(seen))
		}
	}
	if per["0"] == 0 || per["1"] == 0 {
		t.Fatalf("split %v: want both members to get records", per)
	}
}
