//go:build !nop2p

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/edge-agent/edge-agent/condtest"
)

// TestDemo runs `edge-agent demo` as a newcomer would (briefly), with
// edge-collector found through $EDGE_COLLECTOR: progress lines, a summary,
// a verdict, and DIR/out holding what the collector child process accepted
// over libp2p, which `edge-agent verify` accepts too.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := cliEnvVars(t, map[string]string{collectorEnv: collectorBinary(t)}, "demo", "--duration", "4s", "--dir", dir)
	if code != 0 {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	progress := regexp.MustCompile(`(?m)^\[\s*\d+s\] observed\s+\d+\s+signed\s+\d+\s+stored\s+\d+\s+delivered\s+\d+\s+backlog\s+\d+$`)
	if n := len(progress.FindAllString(out, -1)); n < 3 {
		t.Fatalf("%d progress lines in a 4 s demo, want one a second:\n%s", n, out)
	}
	for _, want := range []string{"network side: " + collectorBinary(t), "lora.rx", "gnss.fix", "env.sample", "camera.file", "collector 12D3KooW", "verdict: OK"} {
		if !strings.Contains(out, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}
	// The peer id the device trusts is the one edge-collector runs with.
	said := regexp.MustCompile(`collector (12D3KooW\w+) accepted`).FindStringSubmatch(out)
	log, _ := os.ReadFile(filepath.Join(dir, "collector.log"))
	if said == nil || !strings.Contains(string(log), "edge-collector: peer id "+said[1]+" ") {
		t.Fatalf("demo names collector %v; edge-collector's log:\n%s", said, log)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "out", "*.cbor"))
	if len(files) != 1 || filepath.Base(files[0]) != "collected.cbor" {
		t.Fatalf("DIR/out holds %v, want edge-collector's export collected.cbor", files)
	}
	code, vout, _ := cli(t, append([]string{"verify"}, files...)...)
	if code != 0 || !strings.Contains(vout, "verdict: OK") {
		t.Fatalf("verify DIR/out: exit %d\n%s", code, vout)
	}
}

// TestDemoWithoutCollector: with no edge-collector to be found the demo
// still runs and verifies, device-only through the file uplink, and says
// how to get the network side.
func TestDemoWithoutCollector(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := cliEnvVars(t, map[string]string{"PATH": t.TempDir()}, "demo", "--duration", "2s", "--dir", dir)
	if code != 0 {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	for _, want := range []string{"no network side", "package edge-collector", "make demo", "running device-only", "edge-collector was not found: the file uplink spooled these", "verdict: OK"} {
		if !strings.Contains(out, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "collector 12D3KooW") {
		t.Fatalf("a device-only demo claims a collector:\n%s", out)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "out", "*.cbor")); len(files) == 0 {
		t.Fatal("nothing in DIR/out")
	}
}

// TestDemoCollectorDiesWithDemo: the demo's edge-collector child does not
// outlive a demo that is SIGKILLed (no exit path of its own runs): the
// kernel kills it too (Pdeathsig). The test process is a subreaper while it
// runs, so the orphaned collector becomes its child and is reaped here.
func TestDemoCollectorDiesWithDemo(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	dir := t.TempDir()
	demo := exec.Command(agentBin, "demo", "--duration", "10m", "--dir", dir)
	demo.Env = append(os.Environ(), collectorEnv+"="+collectorBinary(t))
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	defer demo.Process.Kill()
	var child int
	condtest.WaitFor(t, 60*time.Second, "the demo's edge-collector", func() bool {
		child = childOf(demo.Process.Pid, collectorBin)
		return child != 0
	})
	demo.Process.Kill()
	demo.Wait()
	// The collector is this process's child now.
	exited := make(chan syscall.WaitStatus, 1)
	go func() {
		var ws syscall.WaitStatus
		syscall.Wait4(child, &ws, 0, nil)
		exited <- ws
	}()
	select {
	case ws := <-exited:
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("edge-collector ended with %v, want killed by SIGKILL with the demo", ws)
		}
	case <-time.After(30 * time.Second):
		syscall.Kill(child, syscall.SIGKILL)
		<-exited
		t.Fatal("edge-collector still ran 30 s after the demo was SIGKILLed")
	}
}

// childOf is the pid of a child of pid whose command is name, or 0.
func childOf(pid int, name string) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, task := range tasks {
		kids, _ := os.ReadFile(task)
		for _, k := range strings.Fields(string(kids)) {
			if comm, err := os.ReadFile("/proc/" + k + "/comm"); err == nil && strings.TrimSpace(string(comm)) == name {
				n, _ := strconv.Atoi(k)
				return n
			}
		}
	}
	return 0
}

// TestDemoCollectorFails: an edge-collector that exits before it listens
// fails the demo with its exit status and where its log is.
func TestDemoCollectorFails(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := cliEnvVars(t, map[string]string{collectorEnv: fakeCollector(t, t.TempDir())}, "demo", "--duration", "2s", "--dir", dir)
	want := "exited before it listened"
	if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "exit status 7") || !strings.Contains(errOut, filepath.Join(dir, "collector.log")) {
		t.Fatalf("exit %d, stderr %q; want 1 and %q with the status and the log\nstdout:\n%s", code, errOut, want, out)
	}
	if log, _ := os.ReadFile(filepath.Join(dir, "collector.log")); strings.Count(string(log), "args=run -c ") != 3 {
		t.Fatalf("collector.log, want three attempts:\n%s", log)
	}
}
