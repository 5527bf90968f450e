package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/attesttest"
	"github.com/edge-agent/edge-agent/collect"
	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/uplink/mqtt/mqtttest"
	"github.com/edge-agent/edge-agent/uplink/p2p"
)

// The tests below are edge-collector on the embedded bbolt store, the one
// `edge-agent collect` used to run in the device binary.

// bboltConfig writes a collector.toml for a bbolt collector under dir;
// extra is more top-level TOML (before any table).
func bboltConfig(t testing.TB, dir, extra string) string {
	t.Helper()
	p := filepath.Join(dir, "collector.toml")
	doc := "version = 1\ndata_dir = \"" + dir + "/data\"\nnetwork = \"test\"\nstatus_interval = \"0s\"\nmemory = \"32MiB\"\n" + extra
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startInProcess runs the collector of cfgPath in this process, as the
// test's source of a bbolt store; Close stops it.
func startInProcess(t testing.TB, cfgPath string) *collect.Collector {
	t.Helper()
	cfg, err := collect.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := collect.StartInProcess(context.Background(), collect.Options{Config: cfg, CreateKey: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// runCmd runs edge-collector in-process; it fails the test on an error.
func runCmd(t testing.TB, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(context.Background(), args, &out, &errb); err != nil {
		t.Fatalf("edge-collector %v: %v\n%s", args, err, errb.String())
	}
	return out.String(), errb.String()
}

// exitOf runs edge-collector as its own process (main, with its exit
// status) and returns the status and stderr.
func exitOf(t testing.TB, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "EC_ARGS="+strings.Join(args, "\x1f"))
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), errb.String()
}

// TestBboltStatusExport: status and export of a stopped bbolt collector,
// -c and --config alike (`edge-agent collect` took both and hands either
// over), and the exit status of command-line mistakes and a missing config.
func TestBboltStatusExport(t *testing.T) {
	dir := t.TempDir()
	cfgPath := bboltConfig(t, dir, "listen = [\"/ip4/127.0.0.1/tcp/0\"]\n")
	c := startInProcess(t, cfgPath)
	id := c.PeerID()
	c.Close()

	for _, flag := range []string{"-c", "--config"} {
		out, _ := runCmd(t, "status", flag, cfgPath)
		if !strings.Contains(out, "collector peer id "+id+", store bbolt ") || !strings.Contains(out, "no records yet") {
			t.Errorf("status %s:\n%s", flag, out)
		}
	}
	exp := filepath.Join(dir, "out.cbor")
	if _, msg := runCmd(t, "export", "--config", cfgPath, "--out", exp); !strings.Contains(msg, "exported 0 records") {
		t.Errorf("export: %q", msg)
	}
	if fi, err := os.Stat(exp); err != nil || fi.Size() != 0 {
		t.Fatalf("export file: %v, %v", fi, err)
	}

	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"unknown command", []string{"frobnicate", "-c", cfgPath}, 2, `unknown command "frobnicate"`},
		{"unknown flag", []string{"status", "--frob"}, 2, "flag provided but not defined"},
		{"stray argument", []string{"status", "-c", cfgPath, "extra"}, 2, `unexpected argument "extra"`},
		{"missing config", []string{"status", "-c", filepath.Join(dir, "nope.toml")}, 1, "nope.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, errOut := exitOf(t, tt.args...); code != tt.code || !strings.Contains(errOut, tt.err) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tt.code, tt.err)
			}
		})
	}
}

// TestBboltManufacturerStatus: with trusted_manufacturers, `status` (text
// and --json) and `export --out` of a bbolt store say which device is
// genuine, from the stopped collector's database.
func TestBboltManufacturerStatus(t *testing.T) {
	dir := t.TempDir()
	ca := attesttest.NewCA(t, "Factory CA")
	caFile := ca.PEMFile(t)
	cfgPath := bboltConfig(t, dir, "listen = [\"/ip4/127.0.0.1/tcp/0\"]\n[admission]\ntrusted_manufacturers = [\""+caFile+"\"]\n")
	c := startInProcess(t, cfgPath)

	genuine, _ := attest.CreateKey("file:"+filepath.Join(dir, "k1"), rand.Reader)
	plain, _ := attest.CreateKey("file:"+filepath.Join(dir, "k2"), rand.Reader)
	certDER := ca.Issue(t, genuine, "board-1")
	relay, _ := attest.CreateKey("file:"+filepath.Join(dir, "relay"), rand.Reader)
	key, _ := p2p.HostKey(relay)
	n, err := p2p.NewNode(p2p.NodeOpts{Key: key, Network: "test", Bootstrap: c.Addrs(), BackoffMin: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	condtest.WaitFor(t, 20*time.Second, "the collector to join the topic", func() bool { return len(n.RecordPeers()) > 0 })
	publish := func(s attest.Signer, seq uint64, prev [32]byte, kind string, obs any) [32]byte {
		cl := attest.Claims{Chain: [16]byte{9}, Seq: seq, Prev: prev, Time: time.Now().UnixNano(), Kind: kind, Source: "agent", Obs: obs}
		p, err := attest.EncodePayload(&cl)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := attest.SignPayload(s, p)
		if err != nil {
			t.Fatal(err)
		}
		n.PublishRecord(ctx, raw)
		return attest.PayloadHash(p)
	}
	h := publish(genuine, 1, [32]byte{}, attest.KindBoot, attest.Boot{Version: "t", Reason: attest.BootNewChain})
	publish(genuine, 2, h, attest.KindCert, attest.Cert{DER: certDER})
	publish(plain, 1, [32]byte{}, attest.KindBoot, attest.Boot{Version: "t", Reason: attest.BootNewChain})
	condtest.WaitFor(t, 20*time.Second, "3 records accepted", func() bool { return c.Stats().Accepted >= 3 })
	c.Close()

	text, _ := runCmd(t, "status", "-c", cfgPath)
	if !strings.Contains(text, genuine.DeviceID()+"  genuine") || !strings.Contains(text, "CN=board-1") || !strings.Contains(text, plain.DeviceID()+"  no certificate") {
		t.Errorf("status text:\n%s", text)
	}
	js, _ := runCmd(t, "status", "-c", cfgPath, "--json")
	var sum []collect.DeviceSummary
	if err := json.Unmarshal([]byte(js), &sum); err != nil || len(sum) != 2 {
		t.Fatalf("status --json: %v\n%s", err, js)
	}
	for _, d := range sum {
		want := map[bool]string{true: collect.IdentityGenuine, false: collect.IdentityNoCert}[d.Device == genuine.DeviceID()]
		if d.Identity == nil || d.Identity.Status != want {
			t.Errorf("status --json: %s: %+v, want %q", d.Device, d.Identity, want)
		}
	}
	out := filepath.Join(dir, "out.cbor")
	_, msg := runCmd(t, "export", "-c", cfgPath, "--out", out)
	b, err := os.ReadFile(out + ".identity.json")
	if err != nil || !strings.Contains(msg, "exported 3 records") ||
		!strings.Contains(msg, "devices: 1 genuine, 0 not genuine, 1 with no certificate") || !strings.Contains(string(b), `"status": "genuine"`) {
		t.Fatalf("export: %q, %v:\n%s", msg, err, b)
	}
}

var (
	agentOnce sync.Once
	agentDir  string
	agentPath string
	agentErr  error
)

// agentBinary is cmd/edge-agent, the device daemon, built once.
func agentBinary(t testing.TB) string {
	t.Helper()
	agentOnce.Do(func() {
		if agentDir, agentErr = os.MkdirTemp("", "edge-collector-test-bin-"); agentErr != nil {
			return
		}
		agentPath = filepath.Join(agentDir, "edge-agent")
		build := exec.Command("go", "build", "-o", agentPath, "../edge-agent")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			agentErr = fmt.Errorf("building edge-agent for the tests: %v\n%s", err, out)
		}
	})
	if agentErr != nil {
		t.Fatal(agentErr)
	}
	return agentPath
}

// removeBuilt removes what agentBinary built (TestMain, after the tests).
func removeBuilt() {
	if agentDir != "" {
		os.RemoveAll(agentDir)
	}
}

var metricsURL = regexp.MustCompile(`metrics (http://\S+/metrics)`)

// accepted is edge_collector_records_total{verdict="accepted"} of the
// collector whose log is at logPath, or -1 before it serves metrics.
func accepted(t testing.TB, logPath string) float64 {
	t.Helper()
	b, _ := os.ReadFile(logPath)
	m := metricsURL.FindSubmatch(b)
	if m == nil {
		return -1
	}
	resp, err := http.Get(string(m[1]))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), `edge_collector_records_total{verdict="accepted"} `); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", sc.Text(), err)
			}
			return f
		}
	}
	return -1
}

// TestReceivesFromDaemonOverMQTT: edge-collector on bbolt, subscribed to a
// real mosquitto, receives what a real edge-agent daemon publishes (its
// per-kind topics), and its export verifies as the device's whole chain.
func TestReceivesFromDaemonOverMQTT(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Config{})
	agent := agentBinary(t)
	dir := t.TempDir()

	col := &collector{log: filepath.Join(dir, "collector.log"), cfg: bboltConfig(t, dir, `listen = []
metrics_listen = "127.0.0.1:0"
[mqtt]
enabled = true
servers = ["`+broker.URL()+`"]
client_id = "collector-test"
`)}
	col.start(t)
	defer func() {
		col.signal(syscall.SIGKILL)
		if t.Failed() {
			b, _ := os.ReadFile(col.log)
			t.Logf("collector log:\n%s", b)
		}
	}()
	condtest.WaitFor(t, 30*time.Second, "the collector's metrics", func() bool { return accepted(t, col.log) == 0 })

	const n = 500
	if err := os.MkdirAll(filepath.Join(dir, "agent"), 0o750); err != nil {
		t.Fatal(err)
	}
	agentCfg := filepath.Join(dir, "agent.toml")
	doc := fmt.Sprintf(`version = 1
[device]
key = "file:%[1]s/device.key"
data_dir = "%[1]s"
[log]
format = "json"
[status]
socket = "%[1]s/status.sock"
metrics_listen = ""
[[drivers.sim]]
name = "load"
kind = "counter"
interval = "1ms"
count = %[2]d
[uplinks.mqtt]
enabled = true
servers = ["%[3]s"]
`, filepath.Join(dir, "agent"), n, broker.URL())
	if err := os.WriteFile(agentCfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	daemon := exec.Command(agent, "run", "-c", agentCfg)
	daemon.Stdout, daemon.Stderr = logf, logf
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { daemon.Process.Signal(syscall.SIGTERM); daemon.Wait() }()

	condtest.WaitFor(t, 60*time.Second, "the collector to accept the counter records and the boot record", func() bool { return accepted(t, col.log) >= n+1 })
	col.signal(syscall.SIGTERM) // the export reads the stopped collector's file
	out := filepath.Join(dir, "collected.cbor")
	runCmd(t, "export", "-c", col.cfg, "--out", out)
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	a := attest.NewAudit()
	counters := 0
	if err := attest.ReadSequence(bytes.NewReader(raw), func(r []byte) error {
		if v, rec, _ := a.Add(r); v == attest.Accepted && rec.Claims.Kind == "sim.counter" {
			counters++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if rep := a.Report(); !rep.OK() || len(rep.Devices) != 1 || counters != n {
		t.Fatalf("the export: ok %v, %d devices, %d counter records; want one device's verified chain with %d", rep.OK(), len(rep.Devices), counters, n)
	}
}
