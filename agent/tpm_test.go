package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/tpmkey"
	"github.com/edge-agent/edge-agent/attest/tpmkey/tpmtest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/store"
)

func tpmConfig(t *testing.T, dir, uri string, rotation time.Duration) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Device.DataDir = dir
	cfg.Device.Key = uri
	cfg.Device.SessionRotation = config.D(rotation)
	cfg.Store.Path = filepath.Join(dir, "outbox.db")
	cfg.Status = config.Status{Socket: filepath.Join(dir, "status.sock")}
	cfg.Drivers.Sim = []config.Sim{{Name: "sim0", Kind: "counter", Interval: config.D(20 * time.Millisecond)}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// runFor runs a until stop returns true or d passes, and returns Run's error.
func runFor(t *testing.T, a *Agent, d time.Duration, stop func() bool) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	deadline := time.After(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-deadline:
			cancel()
			return <-done
		case <-tick.C:
			if stop != nil && stop() {
				cancel()
				return <-done
			}
		}
	}
}

// storedRecords decodes and verifies every record in the outbox.
func storedRecords(t *testing.T, path string) []*attest.Record {
	t.Helper()
	st, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out []*attest.Record
	err = st.Records(func(r store.Record) error {
		rec, err := attest.Decode(append([]byte(nil), r.Data...))
		if err != nil {
			return err
		}
		if err := rec.Verify(); err != nil {
			return err
		}
		out = append(out, rec)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pythonVerify has the independent verifier (attest/testdata/coseverify.py,
// Python's cryptography, no code shared with attest) check raws.
func pythonVerify(t *testing.T, recs []*attest.Record) {
	t.Helper()
	var in bytes.Buffer
	for _, r := range recs {
		in.WriteString(hex.EncodeToString(r.Raw) + "\n")
	}
	cmd := exec.Command("/usr/bin/python3", filepath.Join("..", "attest", "testdata", "coseverify.py"))
	cmd.Stdin = &in
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python verifier (make test-deps installs python3-cryptography): %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(recs) {
		t.Fatalf("python verifier: %d verdicts for %d records", len(lines), len(recs))
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, "ok session -7") {
			t.Fatalf("record %d (seq %d): python says %q", i, recs[i].Claims.Seq, l)
		}
	}
}

// TestTPMIdentityAcrossRestarts: keys init on a software TPM, records
// signed through session keys it binds, a restart keeps the identity, and
// every record verifies in Go and in Python.
func TestTPMIdentityAcrossRestarts(t *testing.T) {
	tpm := tpmtest.Start(t)
	k, err := tpmkey.Create(tpm.URI(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := k.DeviceID()
	k.Close() // swtpm serves one connection at a time
	dir := t.TempDir()
	cfg := tpmConfig(t, dir, tpm.URI(), time.Second)

	for run := 0; run < 2; run++ {
		a, err := New(Options{Config: cfg, Version: "test"})
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if a.Signer().DeviceID() != id {
			t.Fatalf("run %d: device id %s, want the TPM key's %s", run, a.Signer().DeviceID(), id)
		}
		if err := runFor(t, a, 2500*time.Millisecond, nil); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if n := a.sessionRotations.Load(); n < 2 {
			t.Fatalf("run %d: %d session bindings in 2.5 s at a 1 s rotation", run, n)
		}
	}
	recs := storedRecords(t, cfg.Store.Path)
	keysSeen := map[string]bool{}
	for _, r := range recs {
		if r.DeviceID != id || r.Binding == nil {
			t.Fatalf("seq %d: device %s, binding %v", r.Claims.Seq, r.DeviceID, r.Binding != nil)
		}
		keysSeen[hex.EncodeToString(r.Binding.SessionKey)] = true
	}
	if len(recs) < 20 || len(keysSeen) < 3 {
		t.Fatalf("%d records under %d session keys", len(recs), len(keysSeen))
	}
	pythonVerify(t, recs)
}

// TestTPMVanishes: the TPM is killed while the daemon runs. The daemon goes
// on signing with the current session key and reports the failed rotation;
// a TPM that comes back is used again; one that stays away stops the daemon
// with ErrSessionExpired once the binding expires.
func TestTPMVanishes(t *testing.T) {
	tpm := tpmtest.Start(t)
	k, err := tpmkey.Create(tpm.URI(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k.Close()
	dir := t.TempDir()
	cfg := tpmConfig(t, dir, tpm.URI(), 2*time.Second)

	a, err := New(Options{Config: cfg, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var sawFailure, recovered bool
	var storedAtFailure uint64
	killedAt := time.Now()
	tpm.Kill()
	err = runFor(t, a, 15*time.Second, func() bool {
		a.mu.Lock()
		failure := a.failures["device key"]
		a.mu.Unlock()
		if failure != "" && !sawFailure {
			sawFailure = true
			storedAtFailure = a.Snapshot().Stored
			t.Logf("after %v: %s", time.Since(killedAt).Round(time.Millisecond), failure)
			tpm.Restart() // same state, same port: the key is back
		}
		if sawFailure && failure == "" && a.Snapshot().Stored > storedAtFailure+10 {
			recovered = true
			return true
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sawFailure || !recovered {
		t.Fatalf("failure reported %v, recovered %v", sawFailure, recovered)
	}

	// Now it goes away for good: the daemon stops when the binding expires
	// (2 × rotation), saying why.
	a, err = New(Options{Config: cfg, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	tpm.Kill()
	start := time.Now()
	err = runFor(t, a, 15*time.Second, nil)
	if !errors.Is(err, attest.ErrSessionExpired) {
		t.Fatalf("daemon without its TPM: Run = %v, want ErrSessionExpired", err)
	}
	if el := time.Since(start); el < 3*time.Second {
		t.Fatalf("stopped after %v, before the binding expired", el)
	}
	t.Logf("stopped after %v: %v", time.Since(start).Round(time.Millisecond), err)
	storedRecords(t, cfg.Store.Path) // everything stored verifies
}
