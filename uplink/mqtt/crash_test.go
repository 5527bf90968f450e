package mqtt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/store"
	"github.com/edge-agent/edge-agent/uplink/mqtt/mqtttest"
)

// The crash tests re-execute the test binary as the agent: TestMain runs
// childMain instead of the tests when childEnv is set, so the parent can
// SIGKILL a real process holding a real bbolt store.
const (
	childEnv      = "EDGE_MQTT_TEST_CHILD"
	childURLEnv   = "EDGE_MQTT_TEST_URL"
	childStoreEnv = "EDGE_MQTT_TEST_STORE"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

// childMain runs the uplink on the store until SIGTERM, then prints its
// Status as JSON on stdout.
func childMain() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	s, err := store.Open(os.Getenv(childStoreEnv), store.Options{Uplinks: []string{"mqtt"}, Logger: log})
	if err != nil {
		log.Error("open store", "err", err)
		return 2
	}
	defer s.Close()
	o := DefaultOpts()
	o.Servers = []string{os.Getenv(childURLEnv)}
	o.DeviceID, o.Version, o.Logger = "dev1", "test", log
	o.BackoffMin, o.BackoffMax = 50*time.Millisecond, 400*time.Millisecond
	u, err := New(o)
	if err != nil {
		log.Error("new uplink", "err", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := u.Run(ctx, s.Queue(u.Name())); err != nil {
		log.Error("run", "err", err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(u.Status()); err != nil {
		return 1
	}
	return 0
}

// child is one run of the agent process.
type child struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	done   chan error
}

func startChild(tb testing.TB, url, storePath string) *child {
	tb.Helper()
	c := &child{done: make(chan error, 1)}
	c.cmd = exec.Command(os.Args[0])
	c.cmd.Env = append(os.Environ(), childEnv+"=1", childURLEnv+"="+url, childStoreEnv+"="+storePath)
	c.cmd.Stdout = &c.stdout
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(storePath), "child.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	c.cmd.Stderr = logf
	if err := c.cmd.Start(); err != nil {
		tb.Fatalf("start agent process: %v", err)
	}
	go func() { c.done <- c.cmd.Wait(); logf.Close() }()
	tb.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
		if tb.Failed() {
			out, _ := os.ReadFile(logf.Name())
			tb.Logf("agent log:\n%s", out)
		}
	})
	return c
}

func (c *child) kill(tb testing.TB) {
	tb.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		tb.Fatalf("SIGKILL agent: %v", err)
	}
	<-c.done
	c.done <- nil // for the cleanup
}

// stop ends the agent cleanly and returns its final Status.
func (c *child) stop(tb testing.TB) Status {
	tb.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Fatalf("SIGTERM agent: %v", err)
	}
	select {
	case err := <-c.done:
		c.done <- nil
		if err != nil {
			tb.Fatalf("agent exited: %v", err)
		}
	case <-time.After(15 * time.Second):
		tb.Fatalf("agent did not exit within 15s of SIGTERM")
	}
	var st Status
	if err := json.Unmarshal(c.stdout.Bytes(), &st); err != nil {
		tb.Fatalf("agent status %q: %v", c.stdout.String(), err)
	}
	return st
}

// fillStore creates an outbox holding records 1..n made by record().
func fillStore(tb testing.TB, path string, n, size int) {
	tb.Helper()
	s, err := store.Open(path, store.Options{Uplinks: []string{"mqtt"}})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	defer s.Close()
	const batch = 1000
	for from := 1; from <= n; from += batch {
		var es []store.Entry
		for seq := from; seq < from+batch && seq <= n; seq++ {
			data := record(uint64(seq), size)
			es = append(es, store.Entry{Seq: uint64(seq), Hash: sha256.Sum256(data), Data: data})
		}
		if _, err := s.Append(es, nil); err != nil {
			tb.Fatalf("append: %v", err)
		}
	}
}

// TestAgentKilledMidDrain SIGKILLs the agent while it drains a backlog from a
// real bbolt store, restarts it, and checks that every record arrives and the
// store ends empty.
func TestAgentKilledMidDrain(t *testing.T) {
	const n, size = 30000, 300
	b := mqtttest.Start(t, mqtttest.Config{})
	rec := mqtttest.Record(t, b.URL(), "edge-agent/+/att/#")
	path := filepath.Join(t.TempDir(), "outbox.db")
	fillStore(t, path, n, size)

	first := startChild(t, b.URL(), path)
	rec.WaitFor(t, 20*time.Second, "the drain to start", func(m []mqtttest.Message) bool { return len(m) >= n/10 })
	first.kill(t)
	time.Sleep(200 * time.Millisecond) // let the broker finish forwarding what it had
	before := len(rec.Messages())
	if before >= n {
		t.Fatalf("the agent drained all %d records before the SIGKILL: nothing was tested", n)
	}

	second := startChild(t, b.URL(), path)
	rec.WaitFor(t, 60*time.Second, "every record after the restart", func(m []mqtttest.Message) bool {
		return len(m) > 0 && binary.BigEndian.Uint64(m[len(m)-1].Payload) == n
	})
	st := second.stop(t)
	dups := checkDelivered(t, rec.Messages(), n, size)
	t.Logf("killed after %d of %d deliveries; %d duplicates at the receiver; restarted agent status %+v", before, n, dups, st)
	if st.Published < uint64(n-before) {
		t.Errorf("restarted agent published %d, want at least the %d never delivered", st.Published, n-before)
	}

	s, err := store.Open(path, store.Options{Uplinks: []string{"mqtt"}})
	if err != nil {
		t.Fatalf("reopen store: %v", err)
	}
	defer s.Close()
	stats, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if acked, _ := s.Queue("mqtt").Acked(); acked != n || stats.Records != 0 {
		t.Errorf("store after the drain: acked %d, %d records left; want %d and 0", acked, stats.Records, n)
	}
}

// TestLastWill: a SIGKILLed agent is announced offline by the broker (its
// Last Will), and says online again once restarted.
func TestLastWill(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Config{})
	rec := mqtttest.Record(t, b.URL(), "edge-agent/dev1/status")
	path := filepath.Join(t.TempDir(), "outbox.db")
	states := func(want ...string) func([]mqtttest.Message) bool {
		return func(m []mqtttest.Message) bool {
			if len(m) < len(want) {
				return false
			}
			for i, w := range want {
				if decodeStatus(t, m[i].Payload).State != w {
					t.Fatalf("status message %d is %q, want the sequence %v", i, m[i].Payload, want)
				}
			}
			return true
		}
	}
	c := startChild(t, b.URL(), path)
	rec.WaitFor(t, 10*time.Second, "online", states("online"))
	c.kill(t)
	msgs := rec.WaitFor(t, 10*time.Second, "the Last Will", states("online", "offline"))
	if got, want := decodeStatus(t, msgs[1].Payload), (statusDoc{State: "offline", Device: "dev1", Version: "test", Reason: "connection lost"}); got != want {
		t.Errorf("Last Will = %+v, want %+v", got, want)
	}
	c = startChild(t, b.URL(), path)
	rec.WaitFor(t, 10*time.Second, "online after restart", states("online", "offline", "online"))
	c.stop(t)
	msgs = rec.WaitFor(t, 10*time.Second, "offline after clean stop", states("online", "offline", "online", "offline"))
	if got := decodeStatus(t, msgs[3].Payload); got.Reason != "shutdown" || got.Since == "" {
		t.Errorf("status after clean stop = %+v, want reason shutdown and a since time", got)
	}
}
