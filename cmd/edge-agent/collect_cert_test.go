//go:build !nop2p

package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
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

// TestCollectManufacturerStatus: with trusted_manufacturers, `collect
// status` (text and --json) and `collect export --out` say which device is
// genuine, from the stopped collector's database.
func TestCollectManufacturerStatus(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Factory CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)

	cfgPath := filepath.Join(dir, "collector.toml")
	doc := "version = 1\ndata_dir = \"" + dir + "/data\"\nnetwork = \"test\"\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nstatus_interval = \"0s\"\n" +
		"[admission]\ntrusted_manufacturers = [\"" + caFile + "\"]\n"
	if err := os.WriteFile(cfgPath, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := collect.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Memory = 32 * config.MiB
	c, err := collect.StartInProcess(context.Background(), collect.Options{Config: cfg, CreateKey: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	genuine, _ := attest.CreateKey("file:"+filepath.Join(dir, "k1"), rand.Reader)
	plain, _ := attest.CreateKey("file:"+filepath.Join(dir, "k2"), rand.Reader)
	pub, _ := attest.PublicKey(genuine.Algorithm(), genuine.KeyID())
	certDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "board-1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}, ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
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

	run := func(args ...string) (string, string) {
		var out, errb bytes.Buffer
		env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		if code := runCLI(context.Background(), env, args); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		return out.String(), errb.String()
	}
	text, _ := run("collect", "status", "-c", cfgPath)
	if !strings.Contains(text, genuine.DeviceID()+"  genuine") || !strings.Contains(text, "CN=board-1") || !strings.Contains(text, plain.DeviceID()+"  no certificate") {
		t.Errorf("status text:\n%s", text)
	}
	js, _ := run("collect", "status", "-c", cfgPath, "--json")
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
	_, msg := run("collect", "export", "-c", cfgPath, "--out", out)
	b, err := os.ReadFile(out + ".identity.json")
	if err != nil || !strings.Contains(msg, "devices: 1 genuine, 0 not genuine, 1 with no certificate") ||
		!strings.Contains(string(b), `"status": "genuine"`) {
		t.Fatalf("export: %q, %v:\n%s", msg, err, b)
	}
}
