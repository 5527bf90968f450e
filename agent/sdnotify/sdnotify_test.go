package sdnotify

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listen stands in for systemd's notify socket.
func listen(t *testing.T) (*net.UnixConn, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, path
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestNotifySendsOneDatagram(t *testing.T) {
	conn, path := listen(t)
	n, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}), 42)
	if err != nil || n == nil {
		t.Fatalf("FromEnv: %v %v", n, err)
	}
	if got := n.WatchdogInterval(); got != 30*time.Second {
		t.Fatalf("watchdog %v, want 30s", got)
	}
	if err := n.Notify("READY=1\nSTATUS=signed 0 records"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	k, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:k]); got != "READY=1\nSTATUS=signed 0 records" {
		t.Fatalf("datagram %q", got)
	}
}

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		pid      int
		wantNil  bool
		wantErr  string
		watchdog time.Duration
	}{
		{name: "not under systemd", env: map[string]string{}, wantNil: true},
		{name: "abstract socket", env: map[string]string{"NOTIFY_SOCKET": "@/org/systemd/notify"}},
		{name: "relative path", env: map[string]string{"NOTIFY_SOCKET": "notify.sock"}, wantErr: "neither a path"},
		{name: "bad watchdog", env: map[string]string{"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "soon"}, wantErr: "WATCHDOG_USEC"},
		{name: "watchdog for another pid", env: map[string]string{"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "7"}, pid: 8},
		{name: "watchdog without pid", env: map[string]string{"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "1000000"}, watchdog: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := FromEnv(env(tc.env), tc.pid)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (n == nil) != tc.wantNil {
				t.Fatalf("notifier %v, want nil=%v", n, tc.wantNil)
			}
			if got := n.WatchdogInterval(); got != tc.watchdog {
				t.Fatalf("watchdog %v, want %v", got, tc.watchdog)
			}
		})
	}
}

func TestNilNotifierIsSilent(t *testing.T) {
	var n *Notifier
	if err := n.Notify("READY=1"); err != nil {
		t.Fatal(err)
	}
}

func TestNotifyReportsAMissingSocket(t *testing.T) {
	n, _ := FromEnv(env(map[string]string{"NOTIFY_SOCKET": filepath.Join(t.TempDir(), "gone.sock")}), 1)
	if err := n.Notify("READY=1"); err == nil || !strings.Contains(err.Error(), "gone.sock") {
		t.Fatalf("err %v, want one naming the socket", err)
	}
}
