package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs `edge-agent demo` as a newcomer would (briefly): progress
// lines, a summary, a verdict, and DIR/out holding what the collector
// accepted over libp2p, which `edge-agent verify` accepts too.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := cli(t, "demo", "--duration", "4s", "--dir", dir)
	if code != 0 {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	progress := regexp.MustCompile(`(?m)^\[\s*\d+s\] observed\s+\d+\s+signed\s+\d+\s+stored\s+\d+\s+delivered\s+\d+\s+backlog\s+\d+$`)
	if n := len(progress.FindAllString(out, -1)); n < 3 {
		t.Fatalf("%d progress lines in a 4 s demo, want one a second:\n%s", n, out)
	}
	for _, want := range []string{"lora.rx", "gnss.fix", "env.sample", "camera.file", "collector 12D3KooW", "verdict: OK"} {
		if !strings.Contains(out, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "out", "*.cbor"))
	if len(files) == 0 {
		t.Fatal("nothing in DIR/out")
	}
	code, vout, _ := cli(t, append([]string{"verify"}, files...)...)
	if code != 0 || !strings.Contains(vout, "verdict: OK") {
		t.Fatalf("verify DIR/out: exit %d\n%s", code, vout)
	}
}
