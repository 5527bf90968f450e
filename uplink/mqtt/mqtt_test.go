package mqtt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/uplink/mqtt/mqtttest"
)

const attTopic = "edge-agent/dev1/att/unknown" // the fake records are not COSE

// checkDelivered asserts that msgs hold seqs 1..n byte-identical, in order,
// allowing re-sends: a duplicate may only restart an earlier run (at-least-
// once after a reconnect), never skip or corrupt a record. It returns the
// number of duplicates.
func checkDelivered(tb testing.TB, msgs []mqtttest.Message, n uint64, size int) (dups int) {
	tb.Helper()
	var high uint64 // highest seq seen so far
	seen := make(map[uint64]bool)
	for i, m := range msgs {
		if m.Topic != attTopic {
			tb.Fatalf("message %d on topic %q, want %q", i, m.Topic, attTopic)
		}
		if len(m.Payload) < 8 {
			tb.Fatalf("message %d: %d-byte payload", i, len(m.Payload))
		}
		seq := binary.BigEndian.Uint64(m.Payload)
		if !bytes.Equal(m.Payload, record(seq, size)) {
			tb.Fatalf("message %d (seq %d): payload differs from the record", i, seq)
		}
		switch {
		case seq == high+1:
			high = seq
		case seq <= high:
			// A re-send starts again from an unacked seq.
		default:
			tb.Fatalf("message %d: seq %d after %d: records skipped", i, seq, high)
		}
		if seen[seq] {
			dups++
		}
		seen[seq] = true
	}
	if high != n || uint64(len(seen)) != n {
		tb.Fatalf("delivered up to seq %d (%d distinct), want all %d", high, len(seen), n)
	}
	return dups
}

func TestDelivery(t *testing.T) {
	tests := []struct {
		name    string
		records int
		window  int
		size    int
	}{
		{name: "window 1", records: 200, window: 1, size: 300},
		{name: "default window", records: 20000, window: 64, size: 300},
		{name: "large records", records: 100, window: 16, size: 64 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mqtttest.Start(t, mqtttest.Config{})
			rec := mqtttest.Record(t, b.URL(), "edge-agent/+/att/#")
			q := newFakeQueue(t)
			q.add(tt.records/2, tt.size) // a backlog before Run
			o := testOpts(t, b.URL())
			o.Window = tt.window
			u := mustNew(t, o)
			stop := runUplink(t, u, q)
			q.add(tt.records-tt.records/2, tt.size) // and records that arrive while running

			n := uint64(tt.records)
			condtest.WaitFor(t, 60*time.Second, "queue acked to the last seq", func() bool { return q.ackedSeq() == n })
			msgs := rec.WaitFor(t, 10*time.Second, "all records", func(m []mqtttest.Message) bool { return len(m) >= tt.records })
			if dups := checkDelivered(t, msgs, n, tt.size); dups != 0 {
				t.Errorf("%d duplicates without any reconnect", dups)
			}
			st := u.Status()
			if !st.Connected || st.Published != n || st.Acked != n || st.AckedSeq != n || st.Resent != 0 || st.InFlight != 0 {
				t.Errorf("Status() = %+v, want connected with published = acked = acked_seq = %d", st, n)
			}
			if q.acks > tt.records/2 {
				t.Errorf("%d Ack calls for %d records: acks are not batched", q.acks, tt.records)
			}
			stop()
			if st := u.Status(); st.Connected {
				t.Errorf("Status().Connected after Run returned")
			}
		})
	}
}

// TestStatusDocuments: online on connect, offline with reason shutdown on a
// clean stop, retained; with collectors too (the delivery window drains the
// same way in both modes).
func TestStatusDocuments(t *testing.T) {
	for _, collectors := range []bool{false, true} {
		t.Run(fmt.Sprint("collectors=", collectors), func(t *testing.T) { testStatusDocuments(t, collectors) })
	}
}

func testStatusDocuments(t *testing.T, collectors bool) {
	b := mqtttest.Start(t, mqtttest.Config{})
	rec := mqtttest.Record(t, b.URL(), "edge-agent/dev1/status")
	q := newFakeQueue(t)
	o := testOpts(t, b.URL())
	o.Version = "1.2.3"
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	o.Now = func() time.Time { return now }
	if collectors {
		o.Collectors = []string{"collector-a"}
		o.OpenReceipt = func([]byte) (*Receipt, error) { return nil, errors.New("no receipts here") }
	}
	u := mustNew(t, o)
	stop := runUplink(t, u, q)
	msgs := rec.WaitFor(t, 10*time.Second, "online status", func(m []mqtttest.Message) bool { return len(m) >= 1 })
	want := statusDoc{State: "online", Device: "dev1", Version: "1.2.3", Since: "2026-03-01T12:00:00Z"}
	if got := decodeStatus(t, msgs[0].Payload); got != want {
		t.Errorf("online status = %+v, want %+v", got, want)
	}
	stop()
	msgs = rec.WaitFor(t, 10*time.Second, "offline status", func(m []mqtttest.Message) bool { return len(m) >= 2 })
	want = statusDoc{State: "offline", Device: "dev1", Version: "1.2.3", Since: "2026-03-01T12:00:00Z", Reason: "shutdown"}
	if got := decodeStatus(t, msgs[1].Payload); got != want {
		t.Errorf("status after clean shutdown = %+v, want %+v", got, want)
	}
	// Retained: a subscriber arriving later still sees the last state.
	late := mqtttest.Record(t, b.URL(), "edge-agent/dev1/status")
	msgs = late.WaitFor(t, 5*time.Second, "retained status", func(m []mqtttest.Message) bool { return len(m) >= 1 })
	if got := decodeStatus(t, msgs[0].Payload); !msgs[0].Retained || got.State != "offline" {
		t.Errorf("late subscriber got %+v (retained %v), want the retained offline status", got, msgs[0].Retained)
	}
}

func decodeStatus(tb testing.TB, b []byte) statusDoc {
	tb.Helper()
	var d statusDoc
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		tb.Fatalf("status document %q: %v", b, err)
	}
	return d
}

// TestBrokerRestart stops the broker in the middle of a steady stream and
// starts it again on the same port: nothing may be lost, the backlog drains.
func TestBrokerRestart(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Config{Persistence: true})
	rec := mqtttest.Record(t, b.URL(), "edge-agent/+/att/#")
	q := newFakeQueue(t)
	u := mustNew(t, testOpts(t, b.URL()))
	runUplink(t, u, q)

	// A producer appends 10 records every 10 ms, broker or not.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				q.add(10, 300)
			}
		}
	})
	defer func() { cancel(); wg.Wait() }()

	condtest.WaitFor(t, 10*time.Second, "some records acked", func() bool { return q.ackedSeq() > 200 })
	b.Stop()
	condtest.WaitFor(t, 10*time.Second, "Status to show the outage", func() bool {
		st := u.Status()
		return !st.Connected && st.LastError != ""
	})
	time.Sleep(time.Second) // the backlog grows on disk meanwhile
	outage := u.Status()
	if !strings.HasPrefix(outage.LastError, "broker unreachable: connection refused") && !strings.HasPrefix(outage.LastError, "connection lost") {
		t.Errorf("LastError during outage = %q", outage.LastError)
	}
	b.Restart()
	condtest.WaitFor(t, 20*time.Second, "reconnect", func() bool { return u.Status().Connected })
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()

	n := uint64(len(q.recs))
	condtest.WaitFor(t, 30*time.Second, "backlog drained", func() bool { return q.ackedSeq() == n })
	msgs := rec.WaitFor(t, 10*time.Second, "every record", func(m []mqtttest.Message) bool {
		return len(m) > 0 && binary.BigEndian.Uint64(m[len(m)-1].Payload) == n
	})
	dups := checkDelivered(t, msgs, n, 300)
	st := u.Status()
	if st.Reconnects < 1 || st.Failures < 1 {
		t.Errorf("Status() = %+v, want reconnects and failures counted", st)
	}
	// Duplicates come from both legs: the agent re-sending what it had not
	// acked, and the broker redelivering to the recorder's resumed session.
	t.Logf("%d records, %d duplicates at the receiver, status %+v", n, dups, st)
}

func TestConnectFailures(t *testing.T) {
	pki := mqtttest.NewPKI(t, "good")
	other := mqtttest.NewPKI(t, "other")
	srvCert, srvKey := pki.Server(t)
	devCert, devKey := pki.Client(t, "dev1", time.Now().Add(30*24*time.Hour))
	strangerCert, strangerKey := other.Client(t, "dev1", time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC))

	mtls := mqtttest.Config{TLS: &mqtttest.TLS{CAFile: pki.CAFile, CertFile: srvCert, KeyFile: srvKey, RequireClientCert: true}}
	auth := mqtttest.Config{Users: map[string]string{"dev1": "s3cret"}}
	tests := []struct {
		name   string
		broker *mqtttest.Config // nil: nothing listens
		edit   func(*Opts)
		want   string // LastError prefix; "" means it must deliver
	}{
		{name: "mutual TLS", broker: &mtls, edit: func(o *Opts) {
			o.CAFile, o.CertFile, o.KeyFile = pki.CAFile, devCert, devKey
		}},
		{name: "client certificate from another CA", broker: &mtls, edit: func(o *Opts) {
			o.CAFile, o.CertFile, o.KeyFile = pki.CAFile, strangerCert, strangerKey
		}, want: "TLS: broker rejected the client certificate"},
		{name: "wrong CA", broker: &mtls, edit: func(o *Opts) {
			o.CAFile, o.CertFile, o.KeyFile = other.CAFile, devCert, devKey
		}, want: "TLS: broker certificate signed by an unknown authority — check ca_file"},
		{name: "password", broker: &auth, edit: func(o *Opts) { o.Username, o.Password = "dev1", "s3cret" }},
		{name: "wrong password", broker: &auth, edit: func(o *Opts) { o.Username, o.Password = "dev1", "guess" },
			want: "broker rejected the username/password"},
		{name: "no credentials", broker: &auth, edit: func(*Opts) {}, want: "broker refused the connection: not authorised"},
		{name: "nothing listening", edit: func(*Opts) {}, want: "broker unreachable: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := "tcp://127.0.0.1:1" // port 1: refused on loopback
			if tt.broker != nil {
				url = mqtttest.Start(t, *tt.broker).URL()
			}
			o := testOpts(t, url)
			tt.edit(&o)
			u := mustNew(t, o)
			q := newFakeQueue(t)
			q.add(50, 300)
			runUplink(t, u, q)
			if tt.want == "" {
				condtest.WaitFor(t, 10*time.Second, "all records acked", func() bool { return q.ackedSeq() == 50 })
				return
			}
			// It keeps retrying (several failures, no crash), the reason is
			// plain, and nothing leaves the queue.
			condtest.WaitFor(t, 10*time.Second, "three failed attempts", func() bool { return u.Status().Failures >= 3 })
			st := u.Status()
			if !strings.HasPrefix(st.LastError, tt.want) {
				t.Errorf("Status().LastError = %q, want prefix %q", st.LastError, tt.want)
			}
			if st.Connected || st.Published != 0 || q.ackedSeq() != 0 {
				t.Errorf("Status() = %+v, acked %d: want nothing sent", st, q.ackedSeq())
			}
			if tt.name == "client certificate from another CA" && !strings.Contains(st.LastError, "2030-01-02") {
				t.Errorf("LastError %q does not name the client certificate's expiry", st.LastError)
			}
		})
	}
}

func TestServerFailover(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Config{})
	o := testOpts(t, "tcp://127.0.0.1:1")
	o.Servers = append(o.Servers, b.URL())
	u := mustNew(t, o)
	q := newFakeQueue(t)
	q.add(10, 300)
	runUplink(t, u, q)
	condtest.WaitFor(t, 10*time.Second, "delivery through the second server", func() bool { return q.ackedSeq() == 10 })
	if st := u.Status(); st.Server != b.URL() {
		t.Errorf("Status().Server = %q, want %q", st.Server, b.URL())
	}
}

func TestSubscriber(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Config{})
	const perDevice = 300
	var (
		mu     sync.Mutex
		got    = map[string][]uint64{} // device → seqs in arrival order
		failed = map[uint64]int{}      // seq → refusals so far
	)
	handle := func(device string, payload []byte) error {
		seq := binary.BigEndian.Uint64(payload)
		if !bytes.Equal(payload, record(seq, 300)) {
			t.Errorf("device %s seq %d: payload corrupted", device, seq)
		}
		mu.Lock()
		defer mu.Unlock()
		// Refuse seq 100 of dev1 twice: it must come back each time.
		if device == "dev1" && seq == 100 && failed[seq] < 2 {
			failed[seq]++
			return errHandler
		}
		got[device] = append(got[device], seq)
		return nil
	}
	so := testOpts(t, b.URL())
	so.DeviceID, so.ClientID = "", "collector-1"
	s, err := NewSubscriber(so, handle)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Subscriber.Run: %v", err)
		}
	}()
	time.Sleep(300 * time.Millisecond) // the first SUBSCRIBE; later ones ride the persistent session

	for _, dev := range []string{"dev1", "dev2"} {
		o := testOpts(t, b.URL())
		o.DeviceID = dev
		q := newFakeQueue(t)
		q.add(perDevice, 300)
		runUplink(t, mustNew(t, o), q)
	}
	condtest.WaitFor(t, 30*time.Second, "every record handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return distinct(got["dev1"]) == perDevice && distinct(got["dev2"]) == perDevice
	})
	mu.Lock()
	defer mu.Unlock()
	if failed[100] != 2 {
		t.Errorf("seq 100 refused %d times, want 2 (then accepted on redelivery)", failed[100])
	}
	for dev, seqs := range got {
		var high uint64
		for _, s := range seqs {
			if s > high+1 {
				t.Fatalf("%s: seq %d handled after %d: skipped records", dev, s, high)
			}
			high = max(high, s)
		}
	}
}

func distinct(seqs []uint64) int {
	m := map[uint64]bool{}
	for _, s := range seqs {
		m[s] = true
	}
	return len(m)
}

func TestSubscriberNeedsClientID(t *testing.T) {
	o := testOpts(t, "tcp://127.0.0.1:1883")
	o.ClientID = ""
	_, err := NewSubscriber(o, func(string, []byte) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "fixed client_id") {
		t.Errorf("NewSubscriber without client id: %v", err)
	}
}
