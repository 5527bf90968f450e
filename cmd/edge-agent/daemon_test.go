package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/status"
)

// daemon is a real `edge-agent run` child whose stderr goes to a file that
// JOURNAL_STREAM names, as systemd does for the journal's stream socket.
type daemon struct {
	cmd *exec.Cmd
	log string
	st  *status.Client
}

func startDaemon(t *testing.T, dir, cfgPath string) *daemon {
	t.Helper()
	logPath := filepath.Join(dir, "daemon.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(agentBin, "run", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return &daemon{cmd: cmd, log: logPath, st: &status.Client{Socket: filepath.Join(dir, "status.sock"), Timeout: 2 * time.Second}}
}

// waitFor polls the status API until ok says yes.
func (d *daemon) waitFor(t *testing.T, what string, ok func(*status.Doc) bool) *status.Doc {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // generous: the machine may be loaded
	var last *status.Doc
	for time.Now().Before(deadline) {
		doc, err := d.st.Fetch(context.Background())
		if err == nil {
			last = doc
			if ok(doc) {
				return doc
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	logs, _ := os.ReadFile(d.log)
	t.Fatalf("timed out waiting for %s; last status %+v\nlog:\n%s", what, last, logs)
	return nil
}

func (d *daemon) waitLog(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // generous: the machine may be loaded
	for time.Now().Before(deadline) {
		logs, _ := os.ReadFile(d.log)
		if strings.Contains(string(logs), want) {
			return string(logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	logs, _ := os.ReadFile(d.log)
	t.Fatalf("the log never said %q:\n%s", want, logs)
	return ""
}

func driverNames(doc *status.Doc) []string {
	var n []string
	for _, d := range doc.Drivers {
		n = append(n, d.Name)
	}
	return n
}

// TestSIGHUPReload: a good new config (main file and a drop-in) replaces
// the drivers while the chain goes on; a bad one is refused, logged with its
// file and line, and the daemon keeps the old; SIGTERM still stops it
// cleanly. The log it wrote is read as journald would.
func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	sim := func(name string) string {
		return fmt.Sprintf("[[drivers.sim]]\nname = %q\nkind = \"counter\"\ninterval = \"20ms\"\n", name)
	}
	uplink := "[uplinks.file]\nenabled = true\n"
	cfgPath := writeConfig(t, dir, sim("first")+uplink)
	d := startDaemon(t, dir, cfgPath)
	before := d.waitFor(t, "the first driver", func(doc *status.Doc) bool {
		return slices.Equal(driverNames(doc), []string{"first"}) && doc.Store.HeadSeq > 5
	})

	// Good: the main file swaps the driver, a drop-in adds one.
	writeConfig(t, dir, sim("second")+uplink)
	os.MkdirAll(filepath.Join(dir, "config.d"), 0o700)
	os.WriteFile(filepath.Join(dir, "config.d", "10-more.toml"), []byte(sim("third")), 0o600)
	d.cmd.Process.Signal(syscall.SIGHUP)
	after := d.waitFor(t, "the reloaded drivers", func(doc *status.Doc) bool {
		return slices.Equal(driverNames(doc), []string{"second", "third"}) && doc.Store.HeadSeq > before.Store.HeadSeq+5
	})
	if after.Store.Chain != before.Store.Chain || after.Identity.DeviceID != before.Identity.DeviceID {
		t.Errorf("a reload changed the chain or identity: %s/%s → %s/%s", before.Store.Chain, before.Identity.DeviceID,
			after.Store.Chain, after.Identity.DeviceID)
	}
	d.waitLog(t, "reloaded the config")

	// Bad: a typo in the drop-in, then a change that needs a restart.
	os.WriteFile(filepath.Join(dir, "config.d", "10-more.toml"), []byte(sim("third")+"intervall = \"1s\"\n"), 0o600)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(t, `unknown key \"drivers.sim[1].intervall\" at line 5 of `+filepath.Join(dir, "config.d", "10-more.toml"))
	os.Remove(filepath.Join(dir, "config.d", "10-more.toml"))
	data, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, bytes.Replace(data, []byte("[status]"), []byte("[store]\nmax_bytes = \"2MiB\"\n[status]"), 1), 0o600)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(t, "store settings changed: restart the service")
	os.WriteFile(cfgPath, append(data, []byte("[uplinks.mqtt]\nenabled = true\n")...), 0o600)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(t, "the uplinks changed from [file] to [file mqtt]: restart the service")
	still := d.waitFor(t, "the old drivers still running", func(doc *status.Doc) bool {
		return slices.Equal(driverNames(doc), []string{"second", "third"}) && doc.Store.HeadSeq > after.Store.HeadSeq+5
	})
	if still.Store.Chain != before.Store.Chain {
		t.Errorf("chain changed after refused reloads")
	}

	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("after reloads, SIGTERM: %v", err)
	}
	checkJournalLines(t, d.log)
	if code, out, _ := cli(t, append([]string{"verify"}, spoolFiles(t, filepath.Join(dir, "spool"))...)...); code != 0 ||
		!strings.Contains(out, "unannounced gaps: none") || !strings.Contains(out, "1 boots") {
		t.Errorf("the spool after reloads does not verify as one boot's chain:\n%s", out)
	}
}

func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) == 0 {
		t.Fatal("empty spool")
	}
	return files
}

// checkJournalLines reads a log as journald's stream parser does: every
// line starts with a "<N>" syslog priority matching its level, and the JSON
// after it carries each key once.
func checkJournalLines(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	prio := map[string]string{"DEBUG": "<7>", "INFO": "<6>", "WARN": "<4>", "ERROR": "<3>"}
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if len(line) < 4 || line[0] != '<' || line[2] != '>' {
			t.Errorf("line %d has no priority prefix: %s", n, line)
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line[3:]), &rec); err != nil {
			t.Errorf("line %d is not JSON after its prefix: %v: %s", n, err, line)
			continue
		}
		level, _ := rec["level"].(string)
		if prio[level] != line[:3] {
			t.Errorf("line %d: level %s carries %s", n, level, line[:3])
		}
		seen[line[:3]] = true
		dec := json.NewDecoder(strings.NewReader(line[3:]))
		dec.Token()
		keys := map[string]bool{}
		for dec.More() {
			k, _ := dec.Token()
			if keys[k.(string)] {
				t.Errorf("line %d carries %q twice: %s", n, k, line)
			}
			keys[k.(string)] = true
			var v json.RawMessage
			dec.Decode(&v)
		}
	}
	if !seen["<3>"] || !seen["<6>"] {
		t.Errorf("want both error and info lines in the log; saw %v", seen)
	}
}

func TestLoggerWireFormat(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	syscall.Fstat(int(f.Fd()), &st)
	stream := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	for _, tt := range []struct {
		name, stream, want string
	}{
		{"the journal's stream", stream, "<4>{"},
		{"an inherited variable naming another stream", "1:2", "{"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f.Truncate(0)
			f.Seek(0, 0)
			log, err := newLogger(f, nil, "debug", "auto", func(k string) string {
				if k == "JOURNAL_STREAM" {
					return tt.stream
				}
				return ""
			})
			if err != nil {
				t.Fatal(err)
			}
			log.With("component", "driver").With("component", "gnss").Warn("slow", "took", 1500*time.Millisecond,
				slog.Group("g", "component", "x"))
			data, _ := os.ReadFile(f.Name())
			line := string(data)
			if !strings.HasPrefix(line, tt.want) || strings.Count(line, `"component"`) != 2 ||
				!strings.Contains(line, `"component":"gnss"`) || !strings.Contains(line, `"took":"1.5s"`) {
				t.Errorf("got %q; want prefix %q, one top-level component (gnss), took 1.5s", line, tt.want)
			}
		})
	}
}

// TestIdleDaemonWarns: a daemon with no driver and no uplink says so at
// start, as warnings the journal files as such, and status shows it.
func TestIdleDaemonWarns(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir, writeConfig(t, dir, ""))
	d.waitFor(t, "the status API", func(*status.Doc) bool { return true })
	logs := d.waitLog(t, "no uplinks configured")
	for _, want := range []string{`<4>{"time"`, "no drivers configured: nothing is observed", "systemctl reload edge-agent"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	code, out, _ := cli(t, "status", "--socket", filepath.Join(dir, "status.sock"), "--width", "80")
	if code != 0 || !strings.Contains(out, "WARNING: no drivers configured") || !strings.Contains(out, "WARNING: no uplinks configured") {
		t.Errorf("status of an idle daemon: exit %d\n%s", code, out)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.cmd.Wait()
}

// TestDaemonCPUsFollowTheLoad: the daemon runs on one core at light load,
// on all of them while a source floods it, and on one again after.
func TestDaemonCPUsFollowTheLoad(t *testing.T) {
	t.Setenv("GOMAXPROCS", "") // the runtime ignores it empty; so must the governor
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "[[drivers.sim]]\nname = \"flood\"\nkind = \"counter\"\ninterval = \"10us\"\ncount = 250000\n")
	d := startDaemon(t, dir, cfgPath)
	// Max is what the daemon's runtime found (cores, within any cgroup quota).
	all := d.waitFor(t, "the cpus section", func(doc *status.Doc) bool { return doc.CPUs != nil }).CPUs.Max
	if all > runtime.NumCPU() || all < 1 {
		t.Fatalf("max %d cores on a machine with %d", all, runtime.NumCPU())
	}
	if all > 1 {
		d.waitFor(t, fmt.Sprintf("all %d cores in use during the flood", all), func(doc *status.Doc) bool {
			return doc.CPUs.InUse == all
		})
	}
	doc := d.waitFor(t, "one core once the flood is over", func(doc *status.Doc) bool {
		return doc.CPUs.InUse == 1 && len(doc.Drivers) == 1 && doc.Drivers[0].State == status.StateFinished
	})
	if all > 1 && doc.CPUs.Switches < 2 {
		t.Errorf("%d switches of the number of cores, want at least 2 (up, down)", doc.CPUs.Switches)
	}
	if doc.CPUs.FixedBy != "" {
		t.Errorf("fixed by %q with GOMAXPROCS empty", doc.CPUs.FixedBy)
	}
	code, out, _ := cli(t, "status", "-c", cfgPath)
	if want := fmt.Sprintf("1 of %d in use", all); code != 0 || !strings.Contains(out, want) {
		t.Errorf("status (exit %d) does not say %q:\n%s", code, want, out)
	}
}
