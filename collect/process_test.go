package collect_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/collect"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/store"
	"github.com/edge-agent/edge-agent/uplink/p2p"
)

// Children: the test binary re-executed with EA_CHILD set runs one role.
func TestMain(m *testing.M) {
	switch os.Getenv("EA_CHILD") {
	case "":
		os.Exit(m.Run())
	case "collector":
		os.Exit(childMain(collectorChild))
	case "agent":
		os.Exit(childMain(agentChild))
	default:
		fmt.Fprintln(os.Stderr, "unknown EA_CHILD", os.Getenv("EA_CHILD"))
		os.Exit(2)
	}
}

func childMain(fn func(ctx context.Context) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := fn(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// Test timings: a short seen cache so re-publishing after a collector
// restart is quick.
const (
	testSeenTTL     = 2 * time.Second
	testResendAfter = 3 * time.Second
)

func collectorChild(ctx context.Context) error {
	dir := os.Getenv("EA_DIR")
	cfg := collect.DefaultConfig()
	cfg.DataDir = dir
	cfg.Network = "test"
	cfg.Listen = []string{os.Getenv("EA_LISTEN")}
	cfg.MaxPeers = 64
	cfg.Memory = 32 * config.MiB
	cfg.StatusInterval = config.D(0)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := collect.New(collect.Options{Config: &cfg, CreateKey: true, SeenTTL: testSeenTTL, Logger: log})
	if err != nil {
		return err
	}
	// The parent reads the addresses from this file (renamed into place, so
	// it is never seen half-written).
	addrs := c.PeerID() + "\n" + strings.Join(c.Addrs(), "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "addrs.tmp"), []byte(addrs), 0o600); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(dir, "addrs.tmp"), filepath.Join(dir, "addrs")); err != nil {
		return err
	}
	if os.Getenv("EA_TRACE") != "" {
		go func() {
			for range time.Tick(2 * time.Second) {
				fmt.Fprintf(os.Stderr, "stats %+v scores %v\n", c.Stats(), c.Node().Scores())
			}
		}()
	}
	return c.Run(ctx)
}

// agentChild signs EA_N records into a real bbolt outbox and ships them
// with the p2p uplink until MinReceipts collectors receipted all of them,
// then checks the outbox is empty.
func agentChild(ctx context.Context) error {
	dir := os.Getenv("EA_DIR")
	n, _ := strconv.Atoi(os.Getenv("EA_N"))
	signer, err := attest.CreateKey("file:"+filepath.Join(dir, "device.key"), rand.Reader)
	if err != nil {
		return err
	}
	st, err := store.Open(filepath.Join(dir, "outbox.db"), store.Options{Uplinks: []string{"p2p"}})
	if err != nil {
		return err
	}
	defer st.Close()
	head := st.Head()
	var entries []store.Entry
	prev := head.Hash
	for i := 1; i <= n; i++ {
		c := attest.Claims{Chain: head.Chain, Seq: head.Seq + uint64(i), Prev: prev, Time: time.Now().UnixNano(),
			Kind: "test.count", Source: "child", Obs: map[string]any{"n": i}}
		p, err := attest.EncodePayload(&c)
		if err != nil {
			return err
		}
		raw, err := attest.SignPayload(signer, p)
		if err != nil {
			return err
		}
		prev = attest.PayloadHash(p)
		entries = append(entries, store.Entry{Seq: c.Seq, Hash: prev, Data: raw})
	}
	if _, err := st.Append(entries, nil); err != nil {
		return err
	}
	last := head.Seq + uint64(n)
	o := p2p.DefaultOpts()
	o.Signer = signer
	o.Network = "test"
	o.Bootstrap = strings.Split(os.Getenv("EA_BOOT"), ",")
	o.Collectors = strings.Split(os.Getenv("EA_COLLECTORS"), ",")
	o.MinReceipts = len(o.Collectors)
	o.SeenTTL, o.ResendAfter, o.ResendMax = testSeenTTL, testResendAfter, 2*testResendAfter
	o.BackoffMin, o.BackoffMax = 100*time.Millisecond, time.Second
	u, err := p2p.New(o)
	if err != nil {
		return err
	}
	q := st.Queue("p2p")
	start := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- u.Run(runCtx, q) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if acked, err := q.Acked(); err != nil {
			cancel()
			return err
		} else if acked >= last {
			break
		}
		select {
		case <-ctx.Done():
			cancel()
			return fmt.Errorf("stopped before every record was acked: %+v", u.Status())
		case err := <-done:
			cancel()
			return fmt.Errorf("uplink ended early: %v", err)
		case <-tick.C:
			if os.Getenv("EA_TRACE") != "" && time.Since(start)%(2*time.Second) < 50*time.Millisecond {
				fmt.Fprintf(os.Stderr, "%v %+v\n", time.Since(start).Round(time.Second), u.Status())
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		return err
	}
	stats, err := st.Stats()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "DONE %s %d outbox=%d in %v %s status %+v\n", signer.DeviceID(), n, stats.Records, time.Since(start), peakRSS(), u.Status())
	if stats.Records != 0 {
		return fmt.Errorf("outbox holds %d records after every ack", stats.Records)
	}
	return nil
}

// child is a running child process.
type child struct {
	cmd    *exec.Cmd
	dir    string
	stdout io.ReadCloser
	done   chan error
}

func startChild(tb testing.TB, role, dir string, env ...string) *child {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"EA_CHILD=" + role, "EA_DIR=" + dir}, env...)...)
	stderr, err := os.OpenFile(filepath.Join(dir, role+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &child{cmd: cmd, dir: dir, stdout: out, done: make(chan error, 1)}
	go func() {
		_, _ = io.ReadAll(out) // drain before Wait
		c.done <- cmd.Wait()
		stderr.Close()
	}()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	return c
}

// collectorAt starts a collector child and returns it with its peer id and
// addresses.
func collectorAt(tb testing.TB, dir, listen string) (*child, string, []string) {
	tb.Helper()
	os.Remove(filepath.Join(dir, "addrs"))
	c := startChild(tb, "collector", dir, "EA_LISTEN="+listen)
	path := filepath.Join(dir, "addrs")
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			lines := strings.Fields(string(data))
			return c, lines[0], lines[1:]
		}
		select {
		case err := <-c.done:
			tb.Fatalf("collector exited before listening: %v; log %s", err, readLog(dir, "collector"))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("collector did not write its addresses in 30s")
		}
	}
}

func readLog(dir, role string) string {
	b, _ := os.ReadFile(filepath.Join(dir, role+".log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func waitExit(tb testing.TB, c *child, timeout time.Duration, role string) {
	tb.Helper()
	select {
	case err := <-c.done:
		c.done <- err // for Cleanup
		if err != nil {
			tb.Fatalf("%s in %s failed: %v\n%s", role, c.dir, err, readLog(c.dir, role))
		}
	case <-time.After(timeout):
		tb.Fatalf("%s in %s did not finish in %v\n%s", role, c.dir, timeout, readLog(c.dir, role))
	}
}

func stopCollector(tb testing.TB, c *child) {
	tb.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	waitExit(tb, c, 30*time.Second, "collector")
}

// checkHeld asserts the collector DB in dir holds n records from seq 1 with
// no gaps and no forks for every device in want.
func checkHeld(tb testing.TB, dir string, want map[string]bool, n uint64) {
	tb.Helper()
	sum, err := collect.ReadStatus(filepath.Join(dir, "collector.db"))
	if err != nil {
		tb.Fatal(err)
	}
	got := map[string]bool{}
	for _, d := range sum {
		got[d.Device] = true
		if len(d.Chains) != 1 {
			tb.Errorf("collector %s: device %s has %d chains, want 1", dir, d.Device, len(d.Chains))
			continue
		}
		ch := d.Chains[0]
		if ch.Records != n || ch.FirstSeq != 1 || ch.LastSeq != n || len(ch.UnannouncedGaps) != 0 || ch.Forks != 0 {
			tb.Errorf("collector %s: device %s: %+v, want %d records 1..%d, no gaps or forks", dir, d.Device, ch, n, n)
		}
	}
	for d := range want {
		if !got[d] {
			tb.Errorf("collector %s has nothing from device %s", dir, d)
		}
	}
	if len(got) != len(want) {
		tb.Errorf("collector %s holds %d devices, want %d", dir, len(got), len(want))
	}
}

func deviceOf(tb testing.TB, dir string) string {
	tb.Helper()
	s, err := attest.OpenSigner("file:" + filepath.Join(dir, "device.key"))
	if err != nil {
		tb.Fatal(err)
	}
	return s.DeviceID()
}

// fleet runs agents against two collector children; kill, if set, is
// called once the agents are running.
func fleet(t *testing.T, agents int, n uint64, kill func(t *testing.T, cols []*child, dirs []string, listens []string) []*child) {
	root := t.TempDir()
	var (
		cols    []*child
		dirs    []string
		ids     []string
		boot    []string
		listens []string
	)
	for i := range 2 {
		d := filepath.Join(root, fmt.Sprintf("collector%d", i))
		os.MkdirAll(d, 0o700)
		c, id, addrs := collectorAt(t, d, "/ip4/127.0.0.1/tcp/0")
		cols, dirs, ids = append(cols, c), append(dirs, d), append(ids, id)
		boot = append(boot, addrs[0])
		// Restart on the same port: what the agents' bootstrap names.
		listens = append(listens, strings.TrimSuffix(addrs[0], "/p2p/"+id))
	}
	var as []*child
	devices := map[string]bool{}
	for i := range agents {
		d := filepath.Join(root, fmt.Sprintf("agent%d", i))
		os.MkdirAll(d, 0o700)
		as = append(as, startChild(t, "agent", d, "EA_N="+strconv.FormatUint(n, 10),
			"EA_BOOT="+strings.Join(boot, ","), "EA_COLLECTORS="+strings.Join(ids, ",")))
	}
	if kill != nil {
		cols = kill(t, cols, dirs, listens)
	}
	for _, a := range as {
		waitExit(t, a, 120*time.Second, "agent")
		devices[deviceOf(t, a.dir)] = true
		if testing.Verbose() {
			t.Log(readLog(a.dir, "agent"))
		}
	}
	for i, c := range cols {
		stopCollector(t, c)
		checkHeld(t, dirs[i], devices, n)
	}
}

// TestFleetDelivery: 5 agent processes with real outboxes, 2 collector
// processes; every record reaches both, every outbox empties.
func TestFleetDelivery(t *testing.T) {
	fleet(t, 5, 300, nil)
}

// TestCollectorSIGKILL: a collector is killed with SIGKILL mid-run and
// restarted on its port and data; nothing is lost, and the agents (which
// need both collectors' receipts) still drain.
func TestCollectorSIGKILL(t *testing.T) {
	fleet(t, 3, 300, func(t *testing.T, cols []*child, dirs, listens []string) []*child {
		// Kill once the collector has committed something: its DB grew.
		db := filepath.Join(dirs[0], "collector.db")
		deadline := time.Now().Add(60 * time.Second)
		for {
			if fi, err := os.Stat(db); err == nil && fi.Size() > 64<<10 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("collector 0 stored nothing in 60s\n%s", readLog(dirs[0], "collector"))
			}
			time.Sleep(5 * time.Millisecond) // polling a file another process writes
		}
		_ = cols[0].cmd.Process.Signal(syscall.SIGKILL)
		err := <-cols[0].done
		cols[0].done <- err
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("collector 0 after SIGKILL: %v", err)
		}
		c, _, _ := collectorAt(t, dirs[0], listens[0])
		cols[0] = c
		return cols
	})
}

// peakRSS is this process's peak resident set (VmHWM), for the figures.
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "VmHWM unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			return strings.Join(strings.Fields(l), " ")
		}
	}
	return "VmHWM unknown"
}
