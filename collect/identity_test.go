package collect_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/attesttest"
	"github.com/edge-agent/edge-agent/collect"
	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/uplink/p2p"
)

type deviceChain struct {
	s    attest.Signer
	seq  uint64
	prev [32]byte
}

func (d *deviceChain) next(t *testing.T, kind string, obs any) []byte {
	t.Helper()
	d.seq++
	c := attest.Claims{Chain: [16]byte{7}, Seq: d.seq, Prev: d.prev, Time: time.Now().UnixNano(), Kind: kind, Source: "agent", Obs: obs}
	p, err := attest.EncodePayload(&c)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := attest.SignPayload(d.s, p)
	if err != nil {
		t.Fatal(err)
	}
	d.prev = attest.PayloadHash(p)
	return raw
}

// TestManufacturerIdentity: devices with a certificate from the trusted
// manufacturer (an ES256 hardware-style key and an Ed25519 file key) are
// genuine; one certified by another CA, one with a certificate for another
// key, an expired one and one without a certificate are not, and with
// admission.refuse_untrusted only their agent.boot and agent.cert records
// are stored. After the collector stops, `collect status` (ReadStatus +
// Identify) finds the same verdicts from the stored agent.cert records, and
// the export's FILE.identity.json says them.
func TestManufacturerIdentity(t *testing.T) {
	trusted, rogue := attesttest.NewCA(t, "Trusted Factory CA"), attesttest.NewCA(t, "Rogue CA")
	cfg := collect.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Network = "test"
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Memory = 32 * config.MiB
	cfg.StatusInterval = config.D(0)
	cfg.Admission.TrustedManufacturers = []string{trusted.PEMFile(t)}
	cfg.Admission.RefuseUntrusted = true
	col, err := collect.StartInProcess(context.Background(), collect.Options{Config: &cfg, CreateKey: true})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()

	d := make([]byte, 32)
	d[31] = 1
	hw, _ := attesttest.NewES256(d)
	d[31] = 2
	hw2, _ := attesttest.NewES256(d)
	d[31] = 3
	hw3, _ := attesttest.NewES256(d)
	d[31] = 4
	hw4, _ := attesttest.NewES256(d)
	file, _ := attest.CreateKey("file:"+filepath.Join(t.TempDir(), "k"), rand.Reader)
	noCert, _ := attest.CreateKey("file:"+filepath.Join(t.TempDir(), "k2"), rand.Reader)
	devices := []wantDevice{
		{"es256 genuine", hw, trusted.Issue(t, hw, "hw"), collect.IdentityGenuine, 3},
		{"ed25519 genuine", file, trusted.Issue(t, file, "file"), collect.IdentityGenuine, 3},
		{"untrusted ca", hw2, rogue.Issue(t, hw2, "rogue"), collect.IdentityNotGenuine, 2},
		{"cert of another key", hw3, trusted.Issue(t, hw, "stolen"), collect.IdentityNotGenuine, 2},
		{"expired cert", hw4, trusted.IssueUntil(t, hw4, "old", time.Now().Add(-time.Minute)), collect.IdentityNotGenuine, 2},
		{"no cert", noCert, nil, collect.IdentityNoCert, 1},
	}

	relay, _ := attest.CreateKey("file:"+filepath.Join(t.TempDir(), "relay"), rand.Reader)
	key, _ := p2p.HostKey(relay)
	n, err := p2p.NewNode(p2p.NodeOpts{Key: key, Network: "test", Bootstrap: col.Addrs(), BackoffMin: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	condtest.WaitFor(t, 20*time.Second, "the collector in the topic", func() bool { return len(n.RecordPeers()) > 0 })

	chains := make([]*deviceChain, len(devices))
	want := uint64(0)
	for i, dv := range devices {
		chains[i] = &deviceChain{s: dv.s}
		n.PublishRecord(ctx, chains[i].next(t, attest.KindBoot, attest.Boot{Version: "t", Reason: attest.BootNewChain}))
		want++
		if dv.cert != nil {
			n.PublishRecord(ctx, chains[i].next(t, attest.KindCert, attest.Cert{DER: dv.cert}))
			want++
		}
	}
	condtest.WaitFor(t, 20*time.Second, "boot and cert records", func() bool { return col.Stats().Accepted == want })
	for i := range devices {
		n.PublishRecord(ctx, chains[i].next(t, "test.count", map[string]any{"n": 1}))
	}
	condtest.WaitFor(t, 20*time.Second, "the counter records", func() bool {
		s := col.Stats()
		return s.Accepted == want+2 && s.Rejected == 4
	})

	sum, err := col.Summary()
	if err != nil {
		t.Fatal(err)
	}
	check(t, sum, devices)
	col.Close()

	// What `collect status` and `collect export --out FILE` do, from the
	// stopped collector's database.
	sum, err = collect.ReadStatus(cfg.DBPath())
	if err == nil {
		err = collect.Identify(&cfg, sum, func(w io.Writer) (int, error) { return collect.ExportDB(cfg.DBPath(), w) })
	}
	if err != nil {
		t.Fatal(err)
	}
	check(t, sum, devices)
	var buf bytes.Buffer
	collect.PrintSummary(&buf, sum)
	for _, want := range []string{"IDENTITY", "CN=hw", "not genuine: certificate is for another key", "not genuine: not from a trusted manufacturer", "expired", "no certificate"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("status text lacks %q:\n%s", want, buf.String())
		}
	}
	out := filepath.Join(t.TempDir(), "export.cbor")
	line, err := collect.WriteIdentities(out, sum)
	if err != nil || !strings.Contains(line, "2 genuine, 3 not genuine, 1 with no certificate") {
		t.Fatalf("WriteIdentities: %q, %v", line, err)
	}
	b, err := os.ReadFile(out + ".identity.json")
	var ids []struct {
		Device   string
		Identity collect.Identity
	}
	if err == nil {
		err = json.Unmarshal(b, &ids)
	}
	if err != nil || len(ids) != len(devices) {
		t.Fatalf("identity.json: %d entries, %v:\n%s", len(ids), err, b)
	}
	for _, e := range ids {
		if e.Device == hw.DeviceID() && e.Identity.Status != collect.IdentityGenuine {
			t.Errorf("identity.json: %+v", e)
		}
	}
}

type wantDevice = struct {
	name   string
	s      attest.Signer
	cert   []byte
	status string
	stored uint64
}

func check(t *testing.T, sum []collect.DeviceSummary, devices []wantDevice) {
	t.Helper()
	byDev := map[string]collect.DeviceSummary{}
	for _, s := range sum {
		byDev[s.Device] = s
	}
	for _, dv := range devices {
		s, ok := byDev[dv.s.DeviceID()]
		if !ok || s.Identity == nil {
			t.Fatalf("%s: no summary or identity: %+v", dv.name, s)
		}
		if s.Identity.Status != dv.status || s.Chains[0].Records != dv.stored {
			t.Errorf("%s: identity %+v, %d records stored; want %q and %d", dv.name, s.Identity, s.Chains[0].Records, dv.status, dv.stored)
		}
		t.Logf("%s: %s %s", dv.name, s.Identity.Status, s.Identity.Reason)
	}
}

// TestTrustReprovisioned: the newest agent.cert decides, whatever order the
// records arrive in; boot and cert records are vouched for, the rest only
// for a genuine device; a CA file without a certificate is a config error.
func TestTrustReprovisioned(t *testing.T) {
	trusted, rogue := attesttest.NewCA(t, "Trusted Factory CA"), attesttest.NewCA(t, "Rogue CA")
	tr, err := collect.LoadTrust(collect.Admission{TrustedManufacturers: []string{trusted.PEMFile(t)}})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := attest.CreateKey("file:"+filepath.Join(t.TempDir(), "k"), rand.Reader)
	dc := &deviceChain{s: s}
	rec := func(raw []byte) *attest.Record {
		r, err := attest.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	boot := rec(dc.next(t, attest.KindBoot, attest.Boot{Version: "t", Reason: attest.BootNewChain}))
	good := rec(dc.next(t, attest.KindCert, attest.Cert{DER: trusted.Issue(t, s, "d")}))
	data := rec(dc.next(t, "test.count", map[string]any{"n": 1}))
	bad := rec(dc.next(t, attest.KindCert, attest.Cert{DER: rogue.Issue(t, s, "d")}))
	if !tr.Vouches(boot) || tr.Vouches(data) || tr.Of(s.DeviceID()).Status != collect.IdentityNoCert {
		t.Fatal("before any certificate: boot vouched, data not, no certificate")
	}
	tr.Observe(bad)
	tr.Observe(good) // older: ignored
	if id := tr.Of(s.DeviceID()); id.Status != collect.IdentityNotGenuine || tr.Vouches(data) || !tr.Vouches(good) {
		t.Fatalf("after the newer rogue certificate: %+v", id)
	}
	bad2 := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(bad2, []byte("not a certificate\n"), 0o644)
	if _, err := collect.LoadTrust(collect.Admission{TrustedManufacturers: []string{bad2}}); !errors.Is(err, collect.ErrConfig) || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("LoadTrust(garbage) = %v", err)
	}
}
