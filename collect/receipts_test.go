package collect_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edge-agent/edge-agent/collect"
	loadfleet "github.com/edge-agent/edge-agent/collect/fleet"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/uplink"
	"github.com/edge-agent/edge-agent/uplink/mqtt/mqtttest"
	"github.com/edge-agent/edge-agent/uplink/p2p"
)

// TestReceiptsCoalesce: with [mqtt] receipt_interval, a device's records
// committed within one interval are answered by one signed receipt naming
// their seq ranges, not one receipt per commit; together the receipts
// cover every record.
func TestReceiptsCoalesce(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Config{})
	cfg := collect.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Network = "test"
	cfg.Listen = nil
	cfg.StatusInterval = config.D(0)
	cfg.MQTT.Enabled, cfg.MQTT.Servers, cfg.MQTT.ClientID = true, []string{b.URL()}, "collector-coalesce"
	cfg.MQTT.ReceiptInterval = config.D(2 * time.Second)
	col, err := collect.StartInProcess(context.Background(), collect.Options{Config: &cfg, CreateKey: true})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	d, err := loadfleet.NewDevice(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID(fmt.Sprint("dev-", time.Now().UnixNano())).SetProtocolVersion(4))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	var (
		mu       sync.Mutex
		receipts int
		covered  uplink.SeqSet
		bad      error
	)
	tok := c.Subscribe("edge-agent/"+d.ID()+"/receipt", 1, func(_ paho.Client, m paho.Message) {
		r, err := p2p.OpenMQTTReceipt(m.Payload())
		mu.Lock()
		defer mu.Unlock()
		if err != nil || r.Collector != col.PeerID() || r.Device != d.ID() {
			bad = fmt.Errorf("receipt %+v: %v", r, err)
			return
		}
		receipts++
		covered.Add(r.Chains[d.Chain()])
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	const n = 40
	var recs [][]byte
	for range n {
		raw, _, err := d.Next(time.Now(), 8)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, raw)
	}
	publish := func(seq int) {
		if tok := c.Publish("edge-agent/"+d.ID()+"/att", 1, false, recs[seq-1]); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", seq, tok.Error())
		}
	}
	has := func(upTo uint64) bool {
		mu.Lock()
		defer mu.Unlock()
		if bad != nil {
			t.Fatal(bad)
		}
		for s := uint64(1); s <= upTo; s++ {
			if !covered.Has(s) {
				return false
			}
		}
		return true
	}
	// Until the collector has subscribed the broker drops what is sent:
	// publish seq 1 until it is receipted.
	for deadline := time.Now().Add(30 * time.Second); !has(1); {
		if time.Now().After(deadline) {
			t.Fatal("seq 1 not receipted after 30s")
		}
		publish(1)
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(2500 * time.Millisecond) // seq 1's re-sends answered too
	mu.Lock()
	before := receipts
	mu.Unlock()
	// Paced, so that they are committed one by one (bbolt commits in
	// milliseconds): without coalescing, one receipt each.
	t0 := time.Now()
	for s := 2; s <= n; s++ {
		publish(s)
		time.Sleep(40 * time.Millisecond)
	}
	spanned := int(time.Since(t0)/(2*time.Second)) + 2
	for deadline := time.Now().Add(30 * time.Second); !has(n); {
		if time.Now().After(deadline) {
			t.Fatalf("seqs 1..%d not all receipted after 30s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	got := receipts - before
	mu.Unlock()
	if got > spanned {
		t.Fatalf("%d receipts for %d records, want one per 2 s interval they spanned (at most %d)", got, n-1, spanned)
	}
	if st := col.Stats(); st.Accepted != n || st.Receipts < uint64(receipts) {
		t.Fatalf("stats %+v: want %d accepted and %d receipts", st, n, receipts)
	}
}
