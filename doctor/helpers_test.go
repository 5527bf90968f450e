package doctor_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/doctor"
	"github.com/edge-agent/edge-agent/status"
)

var testNow = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

// box is a host laid out in a temporary directory: a config, a data dir, a
// device key, passwd/group/mounts files, and no daemon.
type box struct {
	root    string
	cfgPath string
	cfg     *config.Config
	host    doctor.Host
	socket  string
}

// newBox builds a healthy box: its offline checks all pass.
func newBox(tb testing.TB) *box {
	tb.Helper()
	root := tb.TempDir()
	b := &box{root: root, socket: filepath.Join(root, "run", "status.sock")}
	dataDir := filepath.Join(root, "var", "lib", "edge-agent")
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		tb.Fatal(err)
	}
	keyPath := filepath.Join(dataDir, "device.key")
	if _, err := attest.CreateKey("file:"+keyPath, rand.NewChaCha8([32]byte{7})); err != nil {
		tb.Fatalf("CreateKey: %v", err)
	}
	cfg := fmt.Sprintf("version = 1\n[device]\nkey = %q\ndata_dir = %q\n[store]\nmax_bytes = \"1MiB\"\n", "file:"+keyPath, dataDir) +
		"[[drivers.sim]]\nname = \"sim\"\nkind = \"counter\"\n[uplinks.file]\nenabled = true\n"
	b.cfgPath = filepath.Join(root, "config.toml")
	writeFile(tb, b.cfgPath, cfg)
	// root owns everything in the temp dir, so the service user is root
	// unless a test says otherwise: access checks then pass.
	writeFile(tb, filepath.Join(root, "passwd"), "root:x:0:0:root:/root:/bin/sh\nedge-agent:x:0:0::/var/lib/edge-agent:/usr/sbin/nologin\n")
	writeFile(tb, filepath.Join(root, "group"), "root:x:0:\ndialout:x:20:\nedge-agent:x:998:\n")
	writeFile(tb, filepath.Join(root, "mounts"), "/dev/mmcblk0p2 / ext4 rw,noatime 0 0\nproc /proc proc rw 0 0\n")
	b.host = doctor.Host{
		Passwd: filepath.Join(root, "passwd"),
		Group:  filepath.Join(root, "group"),
		Mounts: filepath.Join(root, "mounts"),
		Statfs: func(path string) (status.Disk, error) {
			return status.Disk{Path: path, FreeBytes: 20 << 30, TotalBytes: 29 << 30}, nil
		},
		KernelClock: func() (status.Clock, error) {
			synced := true
			return status.Clock{Synced: &synced, MaxErrorSeconds: 0.012}, nil
		},
		Now:         func() time.Time { return testNow },
		DialTimeout: 2 * time.Second,
	}
	return b
}

// setUser makes the service user an unprivileged uid in the given
// supplementary groups.
func (b *box) setUser(tb testing.TB, uid int, groups ...string) {
	tb.Helper()
	writeFile(tb, b.host.Passwd, fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\nedge-agent:x:%d:998::/var/lib/edge-agent:/usr/sbin/nologin\n", uid))
	var g strings.Builder
	g.WriteString("root:x:0:\nedge-agent:x:998:\n")
	for i, name := range []string{"dialout", "i2c"} {
		members := ""
		for _, want := range groups {
			if want == name {
				members = "edge-agent"
			}
		}
		fmt.Fprintf(&g, "%s:x:%d:%s\n", name, 20+i, members)
	}
	writeFile(tb, b.host.Group, g.String())
}

func (b *box) setup(tb testing.TB) doctor.Setup {
	tb.Helper()
	s := doctor.LoadSetup(b.cfgPath)
	if s.ConfigErr != nil {
		tb.Fatalf("LoadSetup: %v", s.ConfigErr)
	}
	s.ProbeDrivers(agent.BuildDrivers(s.Config, agent.Options{})) // as edge-agent doctor does
	b.cfg = s.Config
	s.Socket = b.socket
	return s
}

func (b *box) diagnose(tb testing.TB, s doctor.Setup) *doctor.Report {
	tb.Helper()
	return doctor.Diagnose(context.Background(), b.host, s, &status.Client{Socket: b.socket, Timeout: 5 * time.Second})
}

func writeFile(tb testing.TB, path, data string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// result finds the named check in a report, failing the test without it.
func result(tb testing.TB, r *doctor.Report, name string) doctor.Result {
	tb.Helper()
	for _, res := range r.Results {
		if res.Name == name {
			return res
		}
	}
	var buf bytes.Buffer
	r.WriteText(&buf)
	tb.Fatalf("no check %q in the report:\n%s", name, buf.String())
	return doctor.Result{}
}

// expect checks a result's level and that its message and next step say
// the given words.
func expect(tb testing.TB, r *doctor.Report, name string, level doctor.Level, msg, next string) {
	tb.Helper()
	res := result(tb, r, name)
	if res.Level != level || !strings.Contains(res.Message, msg) || !strings.Contains(res.Next, next) {
		var buf bytes.Buffer
		r.WriteText(&buf)
		tb.Errorf("check %q = %v %q → %q; want %v saying %q → %q\nreport:\n%s", name, res.Level, res.Message, res.Next, level, msg, next, buf.String())
	}
}
