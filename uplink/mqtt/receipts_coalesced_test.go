package mqtt_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/edge-agent/edge-agent/collect/fleet"
	"github.com/edge-agent/edge-agent/uplink/mqtt"
	"github.com/edge-agent/edge-agent/uplink/mqtt/mqtttest"
	"github.com/edge-agent/edge-agent/uplink/p2p"
	"github.com/edge-agent/edge-agent/uplink/uplinktest"
)

// TestCoalescedReceipts: collectors with [mqtt] receipt_interval answer
// with one signed receipt per device covering many seq ranges, and on a
// shared subscription each collector holds every Nth record, so its ranges
// interleave with the other collectors'. The outbox drains exactly as far
// as the union of trusted receipts reaches, a receipt naming seqs already
// acked is harmless, and a one-record receipt (the old one per record)
// still counts.
func TestCoalescedReceipts(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Config{})
	d, err := fleet.NewDevice(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	q := uplinktest.NewQueue()
	for range 30 {
		raw, _, err := d.Next(time.Now(), 8)
		if err != nil {
			t.Fatal(err)
		}
		q.Add(raw)
	}
	keys := make([]crypto.PrivKey, 2)
	ids := make([]string, 2)
	for i := range keys {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := peer.IDFromPrivateKey(k)
		keys[i], ids[i] = k, id.String()
	}
	o := mqtt.DefaultOpts()
	o.Servers, o.DeviceID = []string{b.URL()}, d.ID()
	o.Collectors, o.MinReceipts = ids, 1
	o.ResendAfter, o.ResendMax = time.Hour, time.Hour
	o.OpenReceipt = p2p.OpenMQTTReceipt
	u, err := mqtt.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx, q) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(20 * time.Second); u.Status().Published < 30; {
		if time.Now().After(deadline) {
			t.Fatalf("published %d of 30", u.Status().Published)
		}
		time.Sleep(20 * time.Millisecond)
	}

	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID(fmt.Sprint("pub-", time.Now().UnixNano())).SetProtocolVersion(4))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	topic := "edge-agent/" + d.ID() + "/receipt"
	send := func(i int, ranges ...[2]uint64) {
		t.Helper()
		raw, err := p2p.SignReceipt(keys[i], &p2p.Receipt{Network: "mainnet", Collector: peerOf(keys[i]), Device: d.ID(), Time: time.Now().UnixNano(),
			Chains: []p2p.ChainRanges{{Chain: d.Chain(), Ranges: ranges}}})
		if err != nil {
			t.Fatal(err)
		}
		if tok := c.Publish(topic, 1, false, raw); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	waitAcked := func(want uint64) {
		t.Helper()
		q.WaitAcked(t, want, 10*time.Second)
		time.Sleep(600 * time.Millisecond) // more than one ack flush: nothing beyond
		if a, _ := q.Acked(); a != want {
			t.Fatalf("acked %d, want %d", a, want)
		}
	}
	// Collector 0 holds 1, 3, 5, …, 19; collector 1 holds 2, 4, …, 18: one
	// receipt each. 20 is not receipted yet, so the outbox stops at 19.
	var odd, even [][2]uint64
	for s := uint64(1); s <= 19; s += 2 {
		odd = append(odd, [2]uint64{s, s})
		if s < 19 {
			even = append(even, [2]uint64{s + 1, s + 1})
		}
	}
	send(0, odd...)
	time.Sleep(300 * time.Millisecond)
	if a, _ := q.Acked(); a > 1 {
		t.Fatalf("acked %d with only the odd seqs receipted, want at most 1", a)
	}
	send(1, even...)
	waitAcked(19)
	// Old acked seqs again with new ones; then a single-record receipt.
	send(1, [2]uint64{1, 19}, [2]uint64{21, 29})
	time.Sleep(300 * time.Millisecond)
	if a, _ := q.Acked(); a != 19 {
		t.Fatalf("acked %d with 20 missing, want 19", a)
	}
	send(0, [2]uint64{20, 20})
	waitAcked(29)
	send(0, [2]uint64{30, 30})
	waitAcked(30)
	if st := u.Status(); st.Receipts != 5 || st.ReceiptsRefused != 0 || st.Resent != 0 {
		t.Fatalf("status %+v: want 5 receipts taken, none refused, no re-sends", st)
	}
}

func peerOf(k crypto.PrivKey) peer.ID {
	id, _ := peer.IDFromPrivateKey(k)
	return id
}
