package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/collect/fleet"
	"github.com/edge-agent/edge-agent/collect/pgstore/pgtest"
	"github.com/edge-agent/edge-agent/uplink/mqtt"
	"github.com/edge-agent/edge-agent/uplink/mqtt/mqtttest"
	"github.com/edge-agent/edge-agent/uplink/p2p"
)

// The test binary re-executed with EC_ARGS set is edge-collector itself.
func TestMain(m *testing.M) {
	if a := os.Getenv("EC_ARGS"); a != "" {
		os.Args = append([]string{"edge-collector"}, strings.Split(a, "\x1f")...)
		main()
		os.Exit(0)
	}
	code := m.Run()
	removeBuilt()
	os.Exit(code)
}

// collector is one edge-collector process of the test.
type collector struct {
	cfg, log string
	id       string
	cmd      *exec.Cmd
	done     chan error
	args     []string // more `run` flags
}

func newCollector(t *testing.T, i int, broker, store string) *collector {
	return newCollectorTB(t, i, broker, store)
}

// newCollectorTB writes collector i's config; mqtt are more lines for its
// [mqtt] section.
func newCollectorTB(t testing.TB, i int, broker, store string, mqtt ...string) *collector {
	t.Helper()
	dir := filepath.Join(t.TempDir(), fmt.Sprintf("c%d", i))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	s, err := attest.CreateKey("file:"+filepath.Join(dir, "collector.key"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := p2p.HostKey(s)
	id, _ := peerIDOf(k)
	c := &collector{cfg: filepath.Join(dir, "collector.toml"), log: filepath.Join(dir, "log"), id: id}
	doc := fmt.Sprintf(`version = 1
data_dir = %q
store = %q
listen = []
status_interval = "0s"
[mqtt]
enabled = true
servers = [%q]
client_id = "collector-%d"
shared_group = "fleet"
`, dir, store, broker, i) + strings.Join(mqtt, "\n") + "\n"
	if err := os.WriteFile(c.cfg, []byte(doc), 0o640); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *collector) start(t *testing.T) { c.startTB(t) }

func (c *collector) startTB(t testing.TB) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "EC_ARGS="+strings.Join(append([]string{"run", "-c", c.cfg, "--log-level", "warn"}, c.args...), "\x1f"))
	f, err := os.OpenFile(c.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.cmd, c.done = cmd, make(chan error, 1)
	go func() { c.done <- cmd.Wait(); f.Close() }()
}

func (c *collector) signal(sig syscall.Signal) {
	if c.cmd != nil {
		c.cmd.Process.Signal(sig)
		select {
		case <-c.done:
		case <-time.After(20 * time.Second):
			c.cmd.Process.Kill()
			<-c.done
		}
		c.cmd = nil
	}
}

func queryInt(t *testing.T, url, q string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFleetThroughThreeCollectors: 20 devices publish over one broker to
// three collectors on a shared subscription, all storing into one
// PostgreSQL. One collector is SIGKILLed and restarted mid-run and the
// broker is restarted once. Every record is stored exactly once, and every
// device's outbox drains to zero, through receipts only.
func TestFleetThroughThreeCollectors(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.NewDatabase(t)
	broker := mqtttest.Start(t, mqtttest.Config{Persistence: true})
	var cols []*collector
	var ids []string
	for i := range 3 {
		c := newCollector(t, i, broker.URL(), url)
		cols = append(cols, c)
		ids = append(ids, c.id)
		c.start(t)
	}
	defer func() {
		for _, c := range cols {
			c.signal(syscall.SIGTERM)
			if t.Failed() {
				b, _ := os.ReadFile(c.log)
				t.Logf("collector %s log:\n%s", c.id, b)
			}
		}
	}()

	const devices, perDevice = 20, 150
	var (
		mu  sync.Mutex
		ups []*mqtt.Uplink
	)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	resc := make(chan fleet.Result, 1)
	errc := make(chan error, 1)
	go func() {
		res, err := fleet.Run(ctx, fleet.LoadOpts{
			Servers: []string{broker.URL()}, Devices: devices, Rate: 400, Count: perDevice, Pad: 32,
			Collectors: ids, MinReceipts: 1, ResendAfter: 2 * time.Second, Drain: 2 * time.Minute,
			Uplinks: func(u []*mqtt.Uplink) { mu.Lock(); ups = u; mu.Unlock() },
		})
		resc <- res
		errc <- err
	}()
	time.Sleep(3 * time.Second)
	cols[1].signal(syscall.SIGKILL)
	time.Sleep(time.Second)
	cols[1].start(t)
	time.Sleep(2 * time.Second)
	broker.Stop()
	time.Sleep(500 * time.Millisecond)
	broker.Restart()

	res, err := <-resc, <-errc
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fleet: %+v", res)
	total := devices * perDevice
	if res.Records != uint64(total) || res.Backlog != 0 {
		t.Fatalf("made %d records, %d left in the outboxes; want %d made, 0 left", res.Records, res.Backlog, total)
	}
	mu.Lock()
	for i, u := range ups {
		st := u.Status()
		// With collectors set the outbox moves only on receipts.
		if st.Receipts == 0 || st.AckedSeq != perDevice {
			t.Errorf("device %d: receipts %d, acked seq %d; want receipts and seq %d", i, st.Receipts, st.AckedSeq, perDevice)
		}
	}
	mu.Unlock()
	if n := queryInt(t, url, "SELECT count(*) FROM seqs"); n != total {
		t.Fatalf("seqs rows %d, want %d", n, total)
	}
	if n := queryInt(t, url, "SELECT count(*) FROM records"); n != total {
		t.Fatalf("record rows %d, want %d (each once)", n, total)
	}
	if n := queryInt(t, url, "SELECT count(DISTINCT (kid, chain, seq)) FROM records"); n != total {
		t.Fatalf("distinct records %d, want %d", n, total)
	}
	if n := queryInt(t, url, "SELECT count(*) FROM chains WHERE records = "+fmt.Sprint(perDevice)); n != devices {
		t.Fatalf("%d chains hold all %d records, want %d", n, perDevice, devices)
	}
	// status and export work while the collectors run.
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"status", "-c", cols[0].cfg}, &out, &errb); err != nil {
		t.Fatalf("status while running: %v\n%s", err, errb.String())
	}
	if got := strings.Count(out.String(), "\n"); got < devices+1 || strings.Contains(out.String(), "<-- check") {
		t.Fatalf("status:\n%s", out.String())
	}
	exp := filepath.Join(t.TempDir(), "all.cbor")
	if err := run(context.Background(), []string{"export", "-c", cols[2].cfg, "--out", exp}, &out, &errb); err != nil {
		t.Fatalf("export while running: %v", err)
	}
	raw, _ := os.ReadFile(exp)
	a := attest.NewAudit()
	if err := attest.ReadSequence(bytes.NewReader(raw), func(r []byte) error { a.Add(r); return nil }); err != nil {
		t.Fatal(err)
	}
	if rep := a.Report(); !rep.OK() || len(rep.Devices) != devices {
		t.Fatalf("export audit: ok %v, %d devices", rep.OK(), len(rep.Devices))
	}
	t.Logf("fleet: %d records, p50 %v p99 %v, receipts %d, re-sent %d", res.Records, res.P50, res.P99, res.Receipts, res.Resent)
}
