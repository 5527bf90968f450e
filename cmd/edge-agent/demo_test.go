//go:build !nop2p

package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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
