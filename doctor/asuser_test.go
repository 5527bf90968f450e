package doctor_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/doctor"
	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/store"
)

const (
	svcUID  = 4242 // edge-agent
	techUID = 4343 // a field tech in the edge-agent group
)

// TestDoctorAsServiceUserAndGroupMember runs doctor in a child process under
// the service user's uid and under a tech's uid whose only link to the
// daemon is the edge-agent group, against a data dir laid out as the
// package and the daemon leave it (0750 dir, 0600 key and outbox). With the
// daemon down, "daemon" is the one true failure; anything else the tech
// cannot read is not a failure of the box.
func TestDoctorAsServiceUserAndGroupMember(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test runs doctor under other uids and needs root (make test runs as root)")
	}
	root := t.TempDir()
	for _, d := range []string{filepath.Dir(root), root} {
		os.Chmod(d, 0o755)
	}
	data := filepath.Join(root, "var", "lib", "edge-agent")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(data, "device.key")
	if _, err := attest.CreateKey("file:"+key, rand.Reader); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(data, "outbox.db"), store.Options{Uplinks: []string{"file"}})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	filepath.Walk(data, func(p string, fi os.FileInfo, _ error) error {
		os.Chown(p, svcUID, svcUID)
		if fi.IsDir() {
			return os.Chmod(p, 0o750)
		}
		return os.Chmod(p, 0o600)
	})
	cfg := filepath.Join(root, "config.toml")
	writeFile(t, cfg, fmt.Sprintf("version = 1\n[device]\nkey = %q\ndata_dir = %q\n[status]\nsocket = %q\n"+
		"[[drivers.sim]]\nname = \"sim\"\nkind = \"counter\"\n[uplinks.file]\nenabled = true\n",
		"file:"+key, data, filepath.Join(root, "status.sock")))
	os.Chown(cfg, 0, svcUID)
	os.Chmod(cfg, 0o640)
	writeFile(t, filepath.Join(root, "passwd"), fmt.Sprintf("root:x:0:0::/root:/bin/sh\nedge-agent:x:%d:%d::%s:/usr/sbin/nologin\ntech:x:%d:%d::/home/tech:/bin/sh\n",
		svcUID, svcUID, data, techUID, techUID))
	writeFile(t, filepath.Join(root, "group"), fmt.Sprintf("root:x:0:\nedge-agent:x:%d:tech\ntech:x:%d:\n", svcUID, techUID))
	bin := filepath.Join(root, "doctor.test")
	copyFile(t, os.Args[0], bin)

	for _, who := range []struct {
		name     string
		uid, gid uint32
		groups   []uint32
	}{
		{"service user", svcUID, svcUID, nil},
		{"tech in the edge-agent group", techUID, techUID, []uint32{svcUID}},
	} {
		t.Run(who.name, func(t *testing.T) {
			cmd := exec.Command(bin, "-test.run=^TestHelperDoctorProcess$")
			cmd.Env = append(os.Environ(), "DOCTOR_HELPER_ROOT="+root)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: who.uid, Gid: who.gid, Groups: who.groups}}
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			cmd.Run()
			report := out.String()
			i := strings.Index(report, "{")
			var r doctor.Report
			if i < 0 || json.NewDecoder(strings.NewReader(report[i:])).Decode(&r) != nil {
				t.Fatalf("no report from the child:\n%s\n%s", report, errb.String())
			}
			for _, res := range r.Results {
				t.Logf("%s: %s: %s", res.Level, res.Name, res.Message)
				if res.Level == doctor.Fail && res.Name != "daemon" {
					t.Errorf("false failure as %s: %s: %s", who.name, res.Name, res.Message)
				}
			}
			if len(r.Results) < 8 {
				t.Errorf("only %d results: %+v", len(r.Results), r.Results)
			}
		})
	}
}

// TestHelperDoctorProcess is the child of the test above: it does nothing
// unless started by it.
func TestHelperDoctorProcess(t *testing.T) {
	root := os.Getenv("DOCTOR_HELPER_ROOT")
	if root == "" {
		return
	}
	h := doctor.Host{
		Passwd: filepath.Join(root, "passwd"),
		Group:  filepath.Join(root, "group"),
		Statfs: func(path string) (status.Disk, error) {
			return status.Disk{Path: path, FreeBytes: 20 << 30, TotalBytes: 29 << 30}, nil
		},
		KernelClock: func() (status.Clock, error) {
			synced := true
			return status.Clock{Synced: &synced}, nil
		},
	}
	s := doctor.LoadSetup(filepath.Join(root, "config.toml"))
	if s.ConfigErr != nil {
		t.Fatalf("as uid %d: %v", os.Getuid(), s.ConfigErr)
	}
	s.ProbeDrivers(agent.BuildDrivers(s.Config, agent.Options{}))
	s.Socket = s.Config.Status.Socket
	r := doctor.Diagnose(context.Background(), h, s, &status.Client{Socket: s.Socket, Timeout: time.Second})
	r.WriteJSON(os.Stdout)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
}
