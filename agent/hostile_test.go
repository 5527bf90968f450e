package agent

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/store"
)

// chattr sets or clears the immutable flag: writes to the file then fail
// (EPERM), also for root, also on a descriptor opened before, which is how
// a disk that refuses writes looks to the outbox.
func chattr(tb testing.TB, flag, path string) {
	tb.Helper()
	if out, err := exec.Command("chattr", flag, path).CombinedOutput(); err != nil {
		tb.Fatalf("chattr %s %s: %v: %s (needs e2fsprogs and a filesystem with the immutable flag)", flag, path, err, out)
	}
}

// SIGTERM while the disk refuses writes: the daemon stops within the unit's
// stop timeout (30 s), and every record it had reported durable is there.
func TestStopWhileTheDiskRefusesWrites(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Device.DataDir = dir
	cfg.Device.Key = "file:" + filepath.Join(t.TempDir(), "device.key")
	cfg.Store.Path = filepath.Join(dir, "outbox.db")
	cfg.Status = config.Status{Socket: filepath.Join(t.TempDir(), "status.sock")}
	cfg.Drivers.Sim = []config.Sim{{Name: "load", Kind: "counter", Interval: config.D(time.Millisecond)}}
	cfg.Uplinks.File.Enabled = true
	cfg.Uplinks.File.Dir = t.TempDir()
	a, err := New(Options{Config: &cfg, CreateKey: true, Version: "test", DrainTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	condtest.WaitFor(t, 20*time.Second, "100 records stored", func() bool { _, _, s := a.Pipeline().Counts(); return s >= 100 })

	chattr(t, "+i", cfg.Store.Path) // every write now fails, as on a read-only remount
	defer chattr(t, "-i", cfg.Store.Path)
	condtest.WaitFor(t, 20*time.Second, "the pipeline to see the read-only disk", func() bool { return a.Pipeline().Stats().AppendErrors > 0 })
	_, _, durable := a.Pipeline().Counts()

	start := time.Now()
	cancel() // SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("the daemon did not stop within 25 s of SIGTERM on a read-only disk: systemd would kill it")
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))

	chattr(t, "-i", cfg.Store.Path)
	st, err := store.Open(cfg.Store.Path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if head := st.Head().Seq; head < durable {
		t.Fatalf("outbox head %d after the stop, but %d records were reported durable", head, durable)
	}
}
