package collect

import (
	"context"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/collect/fleet"
	"github.com/edge-agent/edge-agent/config"
)

// countingObserver counts rejects by reason.
type countingObserver struct {
	noObserver
	rejected map[string]*atomic.Int64
}

func newCounting() *countingObserver {
	o := &countingObserver{rejected: map[string]*atomic.Int64{}}
	for _, r := range RejectReasons {
		o.rejected[r] = &atomic.Int64{}
	}
	return o
}

func (o *countingObserver) Rejected(r string) { o.rejected[r].Add(1) }

// mqttCollector is a collector fed through its MQTT handler directly (the
// broker side is tested in uplink/mqtt and cmd/edge-collector).
func mqttCollector(t *testing.T, edit func(*Config)) (*Collector, *countingObserver) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = nil
	cfg.StatusInterval = config.D(0)
	cfg.MQTT = MQTT{Enabled: true, Servers: []string{"tcp://127.0.0.1:1"}, ClientID: "c", TopicPrefix: "edge-agent"}
	edit(&cfg)
	obs := newCounting()
	c, err := New(Options{Config: &cfg, CreateKey: true, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	return c, obs
}

// run runs c until the returned stop (also called at cleanup).
func run(t *testing.T, c *Collector) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// send hands n records of d to the collector; wait waits for every ack.
func send(t *testing.T, c *Collector, d *fleet.Device, n int) (wait func()) {
	t.Helper()
	acks := make(chan error, n)
	for range n {
		raw, _, err := d.Next(time.Now(), 8)
		if err != nil {
			t.Fatal(err)
		}
		c.onMQTT(d.ID(), raw, func(err error) { acks <- err })
	}
	return func() {
		t.Helper()
		for range n {
			select {
			case err := <-acks:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("records not acknowledged")
			}
		}
	}
}

func feed(t *testing.T, c *Collector, d *fleet.Device, n int) {
	t.Helper()
	send(t, c, d, n)()
}

func stored(t *testing.T, c *Collector) map[string]uint64 {
	t.Helper()
	sum, err := c.Summary()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, d := range sum {
		for _, ch := range d.Chains {
			out[d.Device] += ch.Records
		}
	}
	return out
}

func TestAdmissionAllowList(t *testing.T) {
	known, _ := fleet.NewDevice(rand.Reader)
	stranger, _ := fleet.NewDevice(rand.Reader)
	c, obs := mqttCollector(t, func(cfg *Config) { cfg.Admission.Allow = []string{known.ID()} })
	run(t, c)
	feed(t, c, known, 20)
	feed(t, c, stranger, 50)
	got := stored(t, c)
	if got[known.ID()] != 20 || got[stranger.ID()] != 0 {
		t.Fatalf("stored %v; want 20 of the listed device and none of the other", got)
	}
	if n := obs.rejected[rejectNotAllowed].Load(); n != 50 {
		t.Fatalf("not-allowed rejects %d, want 50", n)
	}
	if st := c.Stats(); st.Accepted != 20 || st.Rejected != 50 {
		t.Fatalf("stats %+v", st)
	}
}

// TestAdmissionVoucher: the manufacturer-certificate seam admits a device
// the list does not name.
func TestAdmissionVoucher(t *testing.T) {
	vouched, _ := fleet.NewDevice(rand.Reader)
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = nil
	cfg.StatusInterval = config.D(0)
	cfg.MQTT = MQTT{Enabled: true, Servers: []string{"tcp://127.0.0.1:1"}, ClientID: "c"}
	cfg.Admission.Allow = []string{"12D3KooWsomeoneelse"}
	c, err := New(Options{Config: &cfg, CreateKey: true, Vouch: voucherFunc(func(r *attest.Record) bool { return r.DeviceID == vouched.ID() })})
	if err != nil {
		t.Fatal(err)
	}
	run(t, c)
	feed(t, c, vouched, 5)
	if got := stored(t, c); got[vouched.ID()] != 5 {
		t.Fatalf("stored %v, want the vouched device's 5", got)
	}
}

type voucherFunc func(*attest.Record) bool

func (f voucherFunc) Vouches(r *attest.Record) bool { return f(r) }

func TestAdmissionRateAndQuota(t *testing.T) {
	t.Run("rate", func(t *testing.T) {
		d, _ := fleet.NewDevice(rand.Reader)
		c, obs := mqttCollector(t, func(cfg *Config) { cfg.Admission.DeviceRate, cfg.Admission.DeviceBurst = 1, 10 })
		run(t, c)
		feed(t, c, d, 100) // far faster than 1/s: the burst passes, the rest is refused
		if got := stored(t, c)[d.ID()]; got < 10 || got > 12 {
			t.Fatalf("stored %d, want the burst of 10 (and at most a refill or two)", got)
		}
		if n := obs.rejected[rejectRate].Load(); n < 88 {
			t.Fatalf("rate rejects %d, want about 90", n)
		}
	})
	t.Run("quota", func(t *testing.T) {
		d, _ := fleet.NewDevice(rand.Reader)
		c, obs := mqttCollector(t, func(cfg *Config) { cfg.Admission.DeviceQuota = 4 * config.KiB })
		stopFirst := run(t, c)
		feed(t, c, d, 100) // ~200 bytes each: ~20 fit
		sum, _ := c.Summary()
		if len(sum) != 1 || sum[0].Chains[0].Bytes > 4096 || sum[0].Chains[0].Bytes < 3000 {
			t.Fatalf("stored %+v, want just under the 4 KiB quota", sum)
		}
		if obs.rejected[rejectQuota].Load() == 0 {
			t.Fatal("no quota rejects")
		}
		// The quota holds across a restart: the store's totals seed it.
		c.cancel = nil
		dir := c.cfg.DataDir
		stopFirst()
		c2, obs2 := mqttCollector(t, func(cfg *Config) { cfg.DataDir = dir; cfg.Admission.DeviceQuota = 4 * config.KiB })
		run(t, c2)
		feed(t, c2, d, 5)
		if n := obs2.rejected[rejectQuota].Load(); n != 5 {
			t.Fatalf("after a restart %d of 5 records refused for the quota, want all", n)
		}
	})
}

// TestKnownDevicesFirst: a flood of records from never-seen devices while
// the store is behind is shed beyond unknown_queue; a known device's
// records all wait their turn and are stored.
func TestKnownDevicesFirst(t *testing.T) {
	known, _ := fleet.NewDevice(rand.Reader)
	first, _ := mqttCollector(t, func(*Config) {})
	stop := run(t, first)
	feed(t, first, known, 1) // stored once: known from now on
	stop()

	c, obs := mqttCollector(t, func(cfg *Config) { cfg.DataDir = first.cfg.DataDir; cfg.Admission.UnknownQueue = 16 })
	// The writer is not running yet: the store is "behind".
	var waits []func()
	for range 100 {
		d, _ := fleet.NewDevice(rand.Reader)
		waits = append(waits, send(t, c, d, 1))
	}
	waits = append(waits, send(t, c, known, 50))
	if n := obs.rejected[rejectShed].Load(); n != 84 {
		t.Fatalf("shed %d records of unknown devices, want 84 (100 minus the queue of 16)", n)
	}
	run(t, c)
	for _, w := range waits {
		w()
	}
	got := stored(t, c)
	if got[known.ID()] != 51 {
		t.Fatalf("known device: %d stored, want all 51", got[known.ID()])
	}
	if len(got) != 1+16 {
		t.Fatalf("%d devices stored, want the known one and 16 new", len(got))
	}
}
