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
	"syscall"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/store"
)

func TestCorruptConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content, want string
	}{
		{"binary garbage", "\x7fELF\x02\x01\x01\x00\x00\x00garbage\xff\xfe", "config:"},
		{"truncated", "version = 1\n[store]\nmax_bytes = \"256Mi", "line 3"},
		{"unknown key", "version = 1\n[store]\nmax_byte = 5\n", `did you mean "store.max_bytes"`},
		{"bad value", "version = 1\n[store]\nmax_bytes = \"1KiB\"\n", "store.max_bytes"},
		{"no version", "[store]\n", "version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".toml")
			os.WriteFile(path, []byte(tc.content), 0o600)
			code, _, stderr := cli(t, "config", "check", path)
			if code != 1 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, path) {
				t.Fatalf("exit %d, stderr %q; want 1 and a message naming %s and %q", code, stderr, path, tc.want)
			}
			code, _, stderr = cli(t, "run", "-c", path)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("run: exit %d, stderr %q", code, stderr)
			}
		})
	}
	code, _, stderr := cli(t, "config", "check", filepath.Join(dir, "missing.toml"))
	if code != 1 || !strings.Contains(stderr, "edge-agent config default >") {
		t.Fatalf("missing config: exit %d, %q; want advice to create one", code, stderr)
	}
}

func TestKeyPermissionsRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")
	key := filepath.Join(dir, "device.key")
	if _, err := attest.CreateKey("file:"+key, rand.Reader); err != nil {
		t.Fatal(err)
	}
	os.Chmod(key, 0o644)
	code, _, stderr := cli(t, "run", "-c", cfg)
	if code != 1 || !strings.Contains(stderr, `chmod 600 `+key) {
		t.Fatalf("exit %d, stderr %q; want the daemon to refuse with the chmod to run", code, stderr)
	}
	code, _, stderr = cli(t, "keys", "show", "--key", "file:"+key)
	if code != 1 || !strings.Contains(stderr, "chmod 600") {
		t.Fatalf("keys show: exit %d, %q", code, stderr)
	}
}

func TestKeysInitAndShow(t *testing.T) {
	key := "file:" + filepath.Join(t.TempDir(), "id", "device.key")
	code, out, stderr := cli(t, "keys", "init", "--key", key)
	if code != 0 || !strings.Contains(out, "device id:  12D3KooW") {
		t.Fatalf("keys init: %d %q %q", code, out, stderr)
	}
	_, show, _ := cli(t, "keys", "show", "--key", key)
	if !strings.Contains(out, strings.TrimSpace(show)) {
		t.Fatalf("keys show %q does not match keys init %q", show, out)
	}
	if code, _, stderr := cli(t, "keys", "init", "--key", key); code != 1 || !strings.Contains(stderr, "already has an identity") {
		t.Fatalf("second keys init must refuse: %d %q", code, stderr)
	}
	if code, _, stderr := cli(t, "keys", "show", "--key", "tpm:0"); code != 1 || !strings.Contains(stderr, "want tpm:/dev/tpmrm0") {
		t.Fatalf("tpm: key: %d %q", code, stderr)
	}
}

// TestTruncatedOutbox: a database cut short (an SD card that lost power
// mid-write) is reported by the read-only tools and recovered by the daemon,
// which moves it aside, starts a new chain and keeps running.
func TestTruncatedOutbox(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "[[drivers.sim]]\nname = \"load\"\nkind = \"counter\"\ninterval = \"1ms\"\ncount = 500\n")
	runFor(t, cfg, dir, 2*time.Second)
	db := filepath.Join(dir, "outbox.db")
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(db, fi.Size()/3); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := cli(t, "queue", "stats", "-c", cfg)
	if code != 1 || !strings.Contains(stderr, "corrupt") {
		t.Fatalf("queue stats on a truncated outbox: exit %d, %q", code, stderr)
	}
	log := runFor(t, cfg, dir, 2*time.Second)
	if !strings.Contains(log, "corrupt") || !strings.Contains(log, "moved_to") {
		t.Fatalf("daemon log does not say the outbox was replaced:\n%s", log)
	}
	matches, _ := filepath.Glob(db + ".corrupt-*")
	if len(matches) != 1 {
		t.Fatalf("corrupt file not kept aside: %v", matches)
	}
	code, out, stderr := cli(t, "queue", "stats", "-c", cfg)
	if code != 0 || !strings.Contains(out, "RECOVERED") {
		t.Fatalf("queue stats after recovery: %d %q %q", code, out, stderr)
	}
}

// TestFullQuota: a small quota with no uplink fills up; the oldest records
// are evicted and announced, and the exported outbox verifies.
func TestFullQuota(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "[store]\nmax_bytes = \"1MiB\"\n[[drivers.sim]]\nname = \"load\"\nkind = \"counter\"\ninterval = \"50us\"\n")
	runFor(t, cfg, dir, 3*time.Second)
	code, out, stderr := cli(t, "queue", "stats", "-c", cfg)
	if code != 0 || !strings.Contains(out, "evicted") {
		t.Fatalf("queue stats: %d %q %q", code, out, stderr)
	}
	export := filepath.Join(dir, "export.cbor")
	if code, _, stderr := cli(t, "queue", "export", "-c", cfg, "--out", export); code != 0 {
		t.Fatalf("queue export: %d %q", code, stderr)
	}
	code, out, _ = cli(t, "verify", "--partial", "--json", export)
	if code != 0 || !strings.Contains(out, `"kind":"agent.gap"`) || !strings.Contains(out, `"reason":"quota"`) {
		t.Fatalf("verify of a quota-evicted outbox: exit %d, or no agent.gap record naming the evictions", code)
	}
}

// runFor runs the daemon binary for d, stops it with SIGTERM and returns its log.
func runFor(t *testing.T, cfgPath, dir string, d time.Duration) string {
	t.Helper()
	logPath := filepath.Join(dir, "agent.log")
	os.Remove(logPath)
	ctx, cancel := context.WithTimeout(context.Background(), d+15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, agentBin, "run", "-c", cfgPath)
	logFile, _ := os.Create(logPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(d)
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	logFile.Close()
	out, _ := os.ReadFile(logPath)
	if err != nil {
		t.Fatalf("daemon exited with %v:\n%s", err, out)
	}
	return string(out)
}

// TestQueueWhileDaemonRuns: the outbox is locked by a running daemon; queue
// must say so and point at status, not print a store error.
func TestQueueWhileDaemonRuns(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")
	cmd := startAgent(t, cfg, dir)
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, stderr := cli(t, "queue", "stats", "-c", cfg)
		if code == 1 && strings.Contains(stderr, "the daemon is running") && strings.Contains(stderr, "edge-agent status") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue stats with the daemon running: exit %d, %q", code, stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDamagedRecordIsSalvaged: one flipped byte makes the daemon move the
// whole outbox aside; `queue export` then recovers every intact record from
// the set-aside file, names the damaged one, and the export verifies.
func TestDamagedRecordIsSalvaged(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "[[drivers.sim]]\nname = \"load\"\nkind = \"counter\"\ninterval = \"1ms\"\ncount = 500\n")
	runFor(t, cfg, dir, 2*time.Second)
	db := filepath.Join(dir, "outbox.db")
	var victim []byte
	st, err := store.Open(db, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	st.Records(func(r store.Record) error {
		total++
		if r.Seq == 250 {
			victim = r.Data
		}
		return nil
	})
	st.Close()
	data, err := os.ReadFile(db)
	if err != nil || victim == nil {
		t.Fatalf("read outbox: %v (record 250 found: %v)", err, victim != nil)
	}
	at := bytes.Index(data, victim)
	if at < 0 {
		t.Fatal("record 250 not found in the file")
	}
	data[at+len(victim)/2] ^= 0x40
	if err := os.WriteFile(db, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := cli(t, "queue", "stats", "-c", cfg); code != 1 || !strings.Contains(stderr, "queue export --db "+db) {
		t.Fatalf("queue stats on a damaged outbox: exit %d, want 1 and the export hint: %q", code, stderr)
	}
	runFor(t, cfg, dir, time.Second) // moves it aside
	moved, _ := filepath.Glob(db + ".corrupt-*")
	if len(moved) != 1 {
		t.Fatalf("damaged outbox not moved aside: %v", moved)
	}
	export := filepath.Join(dir, "salvaged.cbor")
	code, _, stderr := cli(t, "queue", "export", "--db", moved[0], "--out", export)
	if code != 0 || !strings.Contains(stderr, fmt.Sprintf("exported its %d intact records", total-1)) || !strings.Contains(stderr, "seqs 250 could not be recovered") {
		t.Fatalf("queue export of the set-aside file: exit %d, want 0, %d intact records and seq 250 named: %q", code, total-1, stderr)
	}
	// Every salvaged record still verifies; the damaged one is a hole.
	_, out, _ := cli(t, "verify", "--partial", export)
	if !strings.Contains(out, fmt.Sprintf(": %d records, seq 1-%d", total-1, total)) || !strings.Contains(out, "unannounced gaps: 250") {
		t.Fatalf("verify of the salvaged records, want %d records and the gap at 250:\n%s", total-1, out)
	}
}
