package p2p_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest/attesttest"
	"github.com/edge-agent/edge-agent/uplink/p2p"
	"github.com/edge-agent/edge-agent/uplink/uplinktest"
)

// jsDir holds the js-libp2p collector and its pinned packages;
// scripts/install-test-deps.sh runs npm ci there.
const jsDir = "testdata/js"

// TestJSInterop: a js-libp2p node (TCP, Noise, Yamux, identify, ping,
// @chainsafe/libp2p-gossipsub) is the agent's trusted collector. It checks
// each record's COSE signature with Node's crypto and gossips receipts that
// ack the agent's outbox, whichever side dials. When it fails, it names the
// protocol step (dial, identify, gossipsub, ping, record, signature,
// receipt).
func TestJSInterop(t *testing.T) {
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (Node.js 20+) is not installed: run scripts/install-test-deps.sh: %v", err)
	}
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", "libp2p", "package.json")); err != nil {
		t.Fatalf("the js-libp2p packages are not installed: run scripts/install-test-deps.sh (npm ci in uplink/p2p/%s): %v", jsDir, err)
	}
	for _, dir := range []string{"agent dials", "js node dials"} {
		t.Run(dir, func(t *testing.T) {
			const network, n = "interop", 6
			signer := attesttest.NewSigner(t, 81)
			o := p2p.DefaultOpts()
			o.Signer, o.Network = signer, network
			o.ResendAfter, o.BackoffMin = 2*time.Second, 50*time.Millisecond
			args := []string{"collector.mjs", "--network", network, "--device", signer.DeviceID(), "--count", strconv.Itoa(n)}
			if dir == "js node dials" {
				o.Listen = []string{freeTCPAddr(t)}
				args = append(args, "--dial", o.Listen[0]+"/p2p/"+signer.DeviceID())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, nodeBin, args...)
			cmd.Dir = jsDir
			cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
			cmd.Stderr = &logWriter{t: t, prefix: "js stderr: "}
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatalf("start the js node: %v", err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			lines := make(chan string, 64)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
			next := func(what string) string {
				t.Helper()
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("js node exited before %s", what)
					}
					if strings.HasPrefix(l, "FAIL ") {
						t.Fatalf("js node: %s", l)
					}
					return l
				case <-ctx.Done():
					t.Fatalf("no %s from the js node within 60s", what)
				}
				return ""
			}
			f := strings.Fields(next("READY line"))
			if len(f) != 3 || f[0] != "READY" {
				t.Fatalf("js node said %q, want READY <peer id> <addr>", f)
			}
			o.Collectors = []string{f[1]}
			if dir == "agent dials" {
				o.Bootstrap = []string{f[2] + "/p2p/" + f[1]}
			}
			q := uplinktest.NewQueue()
			q.Add(chainOf(t, signer, [16]byte{8, 1}, n)...)
			runUplink(t, o, q)
			records := 0
			for done := false; !done; {
				switch l := next("DONE"); {
				case l == "DONE":
					done = true
				case strings.HasPrefix(l, "RECORD "):
					records++
				default:
					t.Fatalf("js node said %q", l)
				}
			}
			if records != n {
				t.Errorf("js node verified %d distinct records, want %d", records, n)
			}
			q.WaitAcked(t, n, 30*time.Second)
		})
	}
}

// logWriter sends a child's stderr to the test log.
type logWriter struct {
	t      testing.TB
	prefix string
}

func (w *logWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(w.prefix + l)
	}
	return len(p), nil
}
