package agent

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent/sdnotify"
	"github.com/edge-agent/edge-agent/config"
)

// TestSystemdNotify runs the daemon with a real unix datagram socket standing
// in for systemd's: it must say READY=1 once running, feed the watchdog with
// a STATUS line while the pipeline makes progress, and say STOPPING=1.
func TestSystemdNotify(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	env := map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "400000"}
	n, err := sdnotify.FromEnv(func(k string) string { return env[k] }, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Device.DataDir = dir
	cfg.Device.Key = "file:" + filepath.Join(dir, "device.key")
	cfg.Store.Path = filepath.Join(dir, "outbox.db")
	cfg.Status = config.Status{}
	a, err := New(Options{Config: &cfg, CreateKey: true, Notifier: n})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	var got []string
	buf := make([]byte, 4096)
	read := func(until string) {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			k, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("waiting for %q, got %q: %v", until, got, err)
			}
			got = append(got, string(buf[:k]))
			if strings.Contains(string(buf[:k]), until) {
				return
			}
		}
	}
	read("READY=1")
	read("WATCHDOG=1")
	if last := got[len(got)-1]; !strings.Contains(last, "STATUS=signed ") {
		t.Fatalf("watchdog message without a status line: %q", last)
	}
	cancel()
	read("STOPPING=1")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
