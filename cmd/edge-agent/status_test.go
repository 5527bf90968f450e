package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/status/statustest"
)

// runCmd runs one of this file's commands the way runCLI does (they are
// registered in commands() by the integration) and returns exit code,
// stdout and stderr.
func runCmd(ctx context.Context, tb testing.TB, fn func(context.Context, *cliEnv, []string) error, args ...string) (int, string, string) {
	tb.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	err := fn(ctx, env, args)
	var ee *exitError
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		if ee.err.Error() != "" {
			errb.WriteString(ee.err.Error() + "\n")
		}
		return ee.code, out.String(), errb.String()
	case errors.As(err, &ue):
		return 2, out.String(), errb.String() + err.Error()
	}
	return 1, out.String(), errb.String() + err.Error()
}

func serveStatus(tb testing.TB, doc *status.Doc) string {
	tb.Helper()
	sock := filepath.Join(tb.TempDir(), "status.sock")
	srv, err := status.Listen(statustest.NewSource(doc), status.ServerOpts{Socket: sock})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.Run(ctx) }()
	tb.Cleanup(func() { cancel(); wg.Wait() })
	return sock
}

var sampleNow = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

func TestStatusText(t *testing.T) {
	doc := statustest.Sample(sampleNow)
	doc.Uplinks = append(doc.Uplinks, status.Uplink{Name: "p2p", Backlog: 400,
		LastError: "no bootstrap peer reachable: dial tcp 203.0.113.7:4001: i/o timeout after a very long wait indeed"})
	sock := serveStatus(t, doc)
	code, out, errOut := runCmd(context.Background(), t, cmdStatus, "--socket", sock, "--width", "80")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	for _, line := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(line); n > 80 {
			t.Errorf("line of %d columns, want ≤ 80:\n%s", n, line)
		}
	}
	for _, want := range []string{
		"edge-agent 1.0.0  device 12D3KooWSampleDevice  up 26h",
		"gps        gnss    loaded         6.0 1s      3D fix, 9 sats, HDOP 0.9",
		"21.4 °C, 1013.2 hPa, 42 %RH",
		"mqtt       connected          12 1s        ssl://broker.example:8883",
		"p2p        DOWN              400 never     no bootstrap peer reachable: dial tcp\n" +
			"           203.0.113.7:4001: i/o timeout after a very long wait indeed\n",
		"12 records, 4.7 KiB of 256.0 MiB quota (0%), head seq 9400",
		"NTP-synchronised (max error 12ms), GNSS offset +0.040 s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestStatusWidth: a wide terminal gets wider cells, a pipe (no width) gets
// every cell whole, and at any width an error is printed to its end.
func TestStatusWidth(t *testing.T) {
	doc := statustest.Sample(sampleNow)
	long := "dial tcp 203.0.113.7:4001: i/o timeout; check the firewall and `ping 203.0.113.7`, then `systemctl reload edge-agent`"
	doc.Uplinks = append(doc.Uplinks, status.Uplink{Name: "p2p", LastError: long})
	sock := serveStatus(t, doc)
	for _, width := range []string{"0", "60", "80", "132", "200"} {
		code, out, errOut := runCmd(context.Background(), t, cmdStatus, "--socket", sock, "--width", width)
		if code != 0 {
			t.Fatalf("--width %s: exit %d %s", width, code, errOut)
		}
		if !strings.Contains(strings.Join(strings.Fields(out), " "), long) {
			t.Errorf("--width %s cut the error:\n%s", width, out)
		}
		w, _ := strconv.Atoi(width)
		for _, line := range strings.Split(out, "\n") {
			if n := utf8.RuneCountInString(line); w >= 80 && n > w { // the headers need 80
				t.Errorf("--width %s: line of %d columns:\n%s", width, n, line)
			}
		}
		if w == 0 || w == 200 {
			if !strings.Contains(out, "p2p        DOWN                0 never     "+long+"\n") {
				t.Errorf("--width %s: want the error on one line:\n%s", width, out)
			}
		}
	}
}

func TestStatusJSON(t *testing.T) {
	sock := serveStatus(t, statustest.Sample(sampleNow))
	code, out, errOut := runCmd(context.Background(), t, cmdStatus, "--json", "--socket", sock)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	doc, err := status.Decode([]byte(out))
	if err != nil {
		t.Fatalf("--json output is not a status document: %v\n%s", err, out)
	}
	var raw map[string]any
	json.Unmarshal([]byte(out), &raw)
	if doc.Schema != 1 || raw["schema"] != float64(1) || doc.Identity.DeviceID != "12D3KooWSampleDevice" {
		t.Errorf("--json: %+v", doc)
	}
}

func TestStatusDaemonDown(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "status.sock")
	for _, args := range [][]string{{}, {"--json"}} {
		code, out, errOut := runCmd(context.Background(), t, cmdStatus, append(args, "--socket", sock)...)
		want := "the daemon is not running (no socket at " + sock + "): start it with `systemctl start edge-agent`, or run `edge-agent doctor`\n"
		if code != 1 || errOut != want || out != "" {
			t.Errorf("status %v with no daemon: exit %d, stdout %q, stderr %q; want 1 and %q", args, code, out, errOut, want)
		}
	}
}

func TestStatusWatch(t *testing.T) {
	sock := serveStatus(t, statustest.Sample(sampleNow))
	ctx, cancel := context.WithTimeout(context.Background(), 350*time.Millisecond)
	defer cancel()
	start := time.Now()
	code, out, errOut := runCmd(ctx, t, cmdStatus, "--watch", "--interval", "100ms", "--socket", sock)
	if code != 0 {
		t.Fatalf("--watch ended with exit %d (want 0 on Ctrl-C), stderr %s", code, errOut)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("--watch took %v to stop after cancel", elapsed)
	}
	if n := strings.Count(out, clearScreen); n < 2 {
		t.Errorf("--watch redrew %d times in 350ms at 100ms, want at least 2", n)
	}
	if n := strings.Count(out, "DRIVER"); n != strings.Count(out, clearScreen) {
		t.Errorf("%d screens but %d tables", strings.Count(out, clearScreen), n)
	}
}

// A camera file name with terminal escapes (clear screen, then fake text)
// is shown escaped, not obeyed.
func TestStatusEscapesControlCharacters(t *testing.T) {
	doc := statustest.Sample(sampleNow)
	doc.Drivers = append(doc.Drivers, status.Driver{Name: "cam", Family: "camera", State: status.StateLoaded,
		Camera: &status.Camera{FilesAttested: 1, LastFile: "a\x1b[2J\x1b[Hall ok\u009b31m.mp4"}})
	doc.Uplinks[0].LastError = "peer says \x07\rFAKE"
	sock := serveStatus(t, doc)
	code, out, errOut := runCmd(context.Background(), t, cmdStatus, "--socket", sock)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	for _, bad := range []string{"\x1b", "\u009b", "\a", "\r"} {
		if strings.Contains(out, bad) {
			t.Errorf("output carries control character %q:\n%q", bad, out)
		}
	}
	if !strings.Contains(out, `a\x1b[2J\x1b[Hall`) {
		t.Errorf("the file name is not shown escaped:\n%s", out)
	}
}
