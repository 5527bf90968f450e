package collect_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/collect"
	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/uplink/p2p"
)

func inProcess(tb testing.TB) (*collect.Collector, *collect.Config) {
	tb.Helper()
	cfg := collect.DefaultConfig()
	cfg.DataDir = tb.TempDir()
	cfg.Network = "test"
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Memory = 32 * config.MiB
	cfg.StatusInterval = config.D(0)
	c, err := collect.StartInProcess(context.Background(), collect.Options{Config: &cfg, CreateKey: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c, &cfg
}

func sign(tb testing.TB, s attest.Signer, seq uint64, prev [32]byte, n int) ([]byte, [32]byte) {
	tb.Helper()
	c := attest.Claims{Chain: [16]byte{5}, Seq: seq, Prev: prev, Time: time.Now().UnixNano(), Kind: "test.count", Source: "t", Obs: map[string]any{"n": n}}
	p, err := attest.EncodePayload(&c)
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := attest.SignPayload(s, p)
	if err != nil {
		tb.Fatal(err)
	}
	return raw, attest.PayloadHash(p)
}

// TestForkEvidence: a device signs two payloads with one seq; the collector
// keeps both as evidence (DB and files) and receipts only the first.
func TestForkEvidence(t *testing.T) {
	col, cfg := inProcess(t)
	dev, err := attest.CreateKey("file:"+filepath.Join(t.TempDir(), "k"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := p2p.HostKey(dev)
	n, err := p2p.NewNode(p2p.NodeOpts{Key: key, Network: "test", Bootstrap: col.Addrs(), BackoffMin: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	condtest.WaitFor(t, 20*time.Second, "the collector in the device's topic", func() bool { return len(n.RecordPeers()) > 0 })

	r1, h1 := sign(t, dev, 1, [32]byte{}, 1)
	r2a, _ := sign(t, dev, 2, h1, 2)
	r2b, _ := sign(t, dev, 2, h1, 99) // same seq, different payload
	for _, r := range [][]byte{r1, r2a, r2b, r2b} {
		if err := n.PublishRecord(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	condtest.WaitFor(t, 20*time.Second, "the fork to be recorded", func() bool { return col.Stats().Forks == 1 })
	forks, err := col.Forks()
	if err != nil {
		t.Fatal(err)
	}
	// Validation runs on several workers, so either variant may be first.
	if len(forks) != 1 || !(bytes.Equal(forks[0][0], r2a) && bytes.Equal(forks[0][1], r2b) ||
		bytes.Equal(forks[0][0], r2b) && bytes.Equal(forks[0][1], r2a)) {
		t.Fatalf("fork evidence %d entries, want the two seq-2 records", len(forks))
	}
	files, _ := filepath.Glob(filepath.Join(cfg.EvidenceDir(), dev.DeviceID(), "*.cose"))
	if len(files) != 2 {
		t.Fatalf("evidence files %v, want 2", files)
	}
	var got [][]byte
	for _, f := range files {
		b, _ := os.ReadFile(f)
		got = append(got, b)
	}
	if !(bytes.Equal(got[0], r2a) && bytes.Equal(got[1], r2b) || bytes.Equal(got[0], r2b) && bytes.Equal(got[1], r2a)) {
		t.Fatal("evidence files do not hold the two conflicting records")
	}
	sum, err := col.Summary()
	if err != nil || len(sum) != 1 || sum[0].Chains[0].Forks != 1 || sum[0].Chains[0].Records != 2 {
		t.Fatalf("summary %+v, %v", sum, err)
	}
	// The export holds the accepted history only, and `verify` accepts it.
	var buf bytes.Buffer
	if k, err := col.Export(&buf); err != nil || k != 2 {
		t.Fatalf("export %d records, %v", k, err)
	}
	audit := attest.NewAudit()
	if err := attest.ReadSequence(&buf, func(raw []byte) error { audit.Add(raw); return nil }); err != nil {
		t.Fatal(err)
	}
	if !audit.Report().OK() {
		t.Fatalf("export does not verify: %+v", audit.Report())
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name, doc, wantErr string
	}{
		{"minimal", "version = 1\ndata_dir = \"/tmp/c\"\n", ""},
		{"unknown key", "version = 1\ndata_dir = \"/tmp/c\"\nlisten_addr = []\n", "listen_addr"},
		{"unknown nested key", "version = 1\ndata_dir = \"/tmp/c\"\n[mqtt]\nserver = \"x\"\n", "mqtt.server"},
		{"no version", "data_dir = \"/tmp/c\"\n", "version"},
		{"wrong version", "version = 2\ndata_dir = \"/tmp/c\"\n", "version at line 1: invalid value 2"},
		// The strict decoder: case matters, the line is named, with a suggestion.
		{"key in the wrong case", "version = 1\nData_Dir = \"/tmp/c\"\n", `unknown key "Data_Dir" at line 2 — did you mean "data_dir"?`},
		{"every problem at once", "version = 1\ndata_dir = \"c\"\nmax_peers = 0\n[admission]\nunknown_queue = 0\n",
			"data_dir at line 2"},
		{"every problem at once, last", "version = 1\ndata_dir = \"c\"\nmax_peers = 0\n[admission]\nunknown_queue = 0\n",
			"admission.unknown_queue at line 5"},
		{"nested too deep", "version = 1\ndata_dir = \"/tmp/c\"\nlisten = " + strings.Repeat("[", 200) + strings.Repeat("]", 200) + "\n",
			"nested 200 deep"},
		{"too large", "version = 1\ndata_dir = \"/tmp/c\"\n#" + strings.Repeat("x", 2<<20) + "\n", "larger than"},
		{"postgres url", "version = 1\ndata_dir = \"/tmp/c\"\nstore = \"mysql://x\"\n", "store at line 3"},
		{"allow list", "version = 1\ndata_dir = \"/tmp/c\"\n[admission]\nallow = [\"\"]\n", "admission.allow[0]"},
		{"refuse_untrusted alone", "version = 1\ndata_dir = \"/tmp/c\"\n[admission]\nrefuse_untrusted = true\n", "admission.trusted_manufacturers"},
		{"relative manufacturer CA", "version = 1\ndata_dir = \"/tmp/c\"\n[admission]\ntrusted_manufacturers = [\"ca.pem\"]\n", "admission.trusted_manufacturers[0] at line 4"},
		{"relative data_dir", "version = 1\ndata_dir = \"c\"\n", "data_dir"},
		{"mqtt without client id", "version = 1\ndata_dir = \"/tmp/c\"\n[mqtt]\nenabled = true\nservers = [\"tcp://127.0.0.1:1883\"]\n", "client_id"},
		{"bad duration", "version = 1\ndata_dir = \"/tmp/c\"\nmax_clock_skew = 5\n", "max_clock_skew"},
		{"receipt interval too long", "version = 1\ndata_dir = \"/tmp/c\"\n[mqtt]\nreceipt_interval = \"1m\"\n", "mqtt.receipt_interval at line 4"},
		{"receipt interval negative", "version = 1\ndata_dir = \"/tmp/c\"\n[mqtt]\nreceipt_interval = \"-1s\"\n", "mqtt.receipt_interval"},
		{"receipts per commit", "version = 1\ndata_dir = \"/tmp/c\"\n[mqtt]\nreceipt_interval = \"0s\"\n", ""},
		// Refused before the TOML library sees them: 16 KB of dotted key took it 7.3 s and 774 MB.
		{"deep dotted key", "version = 1\n" + strings.Repeat("a.", 8<<10) + "b = 1\n", "nested 8192 deep"},
		{"too large", "version = 1\n" + strings.Repeat("#\n", 1<<20), "larger than 1MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := collect.ParseConfig(tt.doc)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
			}
			if !errors.Is(err, collect.ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}
