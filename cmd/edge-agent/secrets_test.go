package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/status"
)

// TestNoSecretInOutput: an MQTT password, in a server URL or in its own
// key, never shows in `config check`, the daemon's log, its status
// document or doctor's report.
func TestNoSecretInOutput(t *testing.T) {
	const secret = "hunter2-s3cr3t"
	dir := t.TempDir()
	inURL := writeConfig(t, dir, `[uplinks.mqtt]
enabled = true
servers = ["tcp://dev1:`+secret+`@127.0.0.1:1"]
`)
	for _, args := range [][]string{{"config", "check", inURL}, {"run", "-c", inURL}, {"doctor", "-c", inURL}} {
		code, out, stderr := cli(t, args...)
		if strings.Contains(out+stderr, secret) {
			t.Errorf("%v prints the password:\n%s%s", args, out, stderr)
		}
		if args[0] != "doctor" && (code != 1 || !strings.Contains(stderr, "carries credentials")) {
			t.Errorf("%v: exit %d, %q; want 1 and the reason", args, code, stderr)
		}
	}

	// The password in its own key, against a broker that refuses.
	cfg := writeConfig(t, dir, `[uplinks.mqtt]
enabled = true
servers = ["tcp://127.0.0.1:1"]
username = "dev1"
password = "`+secret+`"
`)
	cmd := startAgent(t, cfg, dir)
	var doc *status.Doc
	client := &status.Client{Socket: filepath.Join(dir, "status.sock"), Timeout: 5 * time.Second}
	condtest.WaitFor(t, 20*time.Second, "an uplink error in the status document", func() bool {
		var err error
		doc, err = client.Fetch(t.Context())
		return err == nil && len(doc.Uplinks) > 0 && doc.Uplinks[0].LastError != ""
	})
	_, doctorOut, doctorErr := cli(t, "doctor", "-c", cfg)
	_, statusOut, _ := cli(t, "status", "--json", "--socket", filepath.Join(dir, "status.sock"))
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	log, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
	for what, text := range map[string]string{"log": string(log), "status": statusOut, "doctor": doctorOut + doctorErr} {
		if strings.Contains(text, secret) {
			t.Errorf("the %s shows the password:\n%s", what, text)
		}
	}
}

// TestConfigCheckWarnsQuotaBeyondTheDisk: a quota larger than the
// filesystem is valid TOML but wrong for this box; config check says so.
func TestConfigCheckWarnsQuotaBeyondTheDisk(t *testing.T) {
	dir := t.TempDir()
	d, err := status.StatDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, fmt.Sprintf("[store]\nmax_bytes = \"%dMiB\"\n", d.TotalBytes>>20*2))
	code, out, stderr := cli(t, "config", "check", cfg)
	if code != 0 || !strings.Contains(out, "warning: store.max_bytes") || !strings.Contains(out, "larger than the filesystem") {
		t.Fatalf("config check: exit %d, %q %q; want 0 and a warning about the quota", code, out, stderr)
	}
}
