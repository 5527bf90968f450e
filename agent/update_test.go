package agent

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/pipeline/pipelinetest"
	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/store"
)

// TestCompareVersionsAgreesWithDpkg holds compareVersions to dpkg's own
// ordering, since apt decides upgrades by that order too.
func TestCompareVersionsAgreesWithDpkg(t *testing.T) {
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		t.Fatal("dpkg not found: these tests compare with dpkg --compare-versions (Debian package dpkg)")
	}
	vs := []string{"0.1.0", "0.1.0~rc1", "0.1.0+3+gabc", "0.1.1", "0.10.0", "0.9.9", "1.0", "1.0.0", "1.0a", "1.0~", "1.0~~", "0.0.0~6573d95", "0.0.0~6573d95+dirty", "2"}
	for _, a := range vs {
		for _, b := range vs {
			want := 0
			if exec.Command(dpkg, "--compare-versions", a, "lt", b).Run() == nil {
				want = -1
			} else if exec.Command(dpkg, "--compare-versions", a, "gt", b).Run() == nil {
				want = 1
			}
			if got := compareVersions(a, b); got != want {
				t.Errorf("compareVersions(%q, %q) = %d, dpkg says %d", a, b, got, want)
			}
		}
	}
	if compareVersions("v0.2.0", "0.1.9") != 1 {
		t.Error("a leading v is not ignored")
	}
}

// runVersion starts the daemon at version v on dir's outbox until it has
// stored a few records, and returns the records of the outbox.
func runVersion(t *testing.T, dir, v string) []*attest.Record {
	t.Helper()
	cfg := configIn(dir)
	cfg.Drivers.Sim = []config.Sim{{Name: "count0", Kind: "counter", Interval: config.D(10 * time.Millisecond), Count: 3}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Config: &cfg, CreateKey: true, Version: v})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	// Signed, not stored: at this trickle the commit window stretches, and
	// the shutdown below commits what is signed.
	condtest.WaitFor(t, 20*time.Second, "4 records signed", func() bool { return a.Snapshot().Signed >= 4 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(cfg.Store.Path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, recs := pipelinetest.AuditStore(t, st)
	if !rep.OK() {
		t.Fatalf("after %s: the outbox does not audit clean: %+v", v, rep)
	}
	return recs
}

// lastStart returns the boot obs of the last start and the agent.update
// records after it.
func lastStart(t *testing.T, recs []*attest.Record) (attest.Boot, []attest.Update, []byte) {
	t.Helper()
	var boot attest.Boot
	var ups []attest.Update
	var chain []byte
	for _, r := range recs {
		obs, _ := r.Claims.Obs.(cbor.RawMessage)
		switch r.Claims.Kind {
		case attest.KindBoot:
			boot, ups = attest.Boot{}, nil
			if err := cbor.Unmarshal(obs, &boot); err != nil {
				t.Fatal(err)
			}
			chain = r.Claims.Chain[:]
		case attest.KindUpdate:
			var u attest.Update
			if err := cbor.Unmarshal(obs, &u); err != nil {
				t.Fatal(err)
			}
			ups = append(ups, u)
		}
	}
	return boot, ups, chain
}

// TestUpgradeDowngradeAndRollbackKeepTheChain: the same outbox run by
// v0.1.0, then v0.2.0 (upgrade), then v0.1.0 again after the health gate
// rolled v0.2.0 back: one chain throughout, each start's boot record says
// why, and agent.update records name the versions and the rollback.
func TestUpgradeDowngradeAndRollbackKeepTheChain(t *testing.T) {
	dir := t.TempDir()
	recs := runVersion(t, dir, "v0.1.0")
	boot, ups, chain0 := lastStart(t, recs)
	if boot.Reason != attest.BootNewChain || len(ups) != 0 {
		t.Fatalf("first start: boot %+v, updates %+v; want new-chain and none", boot, ups)
	}

	recs = runVersion(t, dir, "v0.2.0")
	boot, ups, chain := lastStart(t, recs)
	if boot.Reason != attest.BootUpgrade || boot.Version != "v0.2.0" {
		t.Fatalf("after upgrade: boot %+v, want reason upgrade, version v0.2.0", boot)
	}
	if len(ups) != 1 || ups[0] != (attest.Update{Event: attest.UpdateUpgrade, From: "v0.1.0", To: "v0.2.0"}) {
		t.Fatalf("after upgrade: updates %+v", ups)
	}
	if string(chain) != string(chain0) {
		t.Fatal("the upgrade started a new chain")
	}

	// The health gate rolled v0.2.0 back and left its report.
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rb, _ := json.Marshal(status.Rollback{From: "v0.2.0", To: "v0.1.0", Reason: "no READY within 2m0s", At: at})
	if err := os.MkdirAll(filepath.Join(dir, "upgrade"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, status.UpdateRollbackFile), rb, 0o640); err != nil {
		t.Fatal(err)
	}
	recs = runVersion(t, dir, "v0.1.0")
	boot, ups, chain = lastStart(t, recs)
	if boot.Reason != attest.BootDowngrade {
		t.Fatalf("after rollback: boot reason %q, want downgrade", boot.Reason)
	}
	want := []attest.Update{
		{Event: attest.UpdateDowngrade, From: "v0.2.0", To: "v0.1.0"},
		{Event: attest.UpdateRollback, From: "v0.2.0", To: "v0.1.0", Reason: "no READY within 2m0s", At: at.UnixNano()},
	}
	if len(ups) != 2 || ups[0] != want[0] || ups[1] != want[1] {
		t.Fatalf("after rollback: updates %+v, want %+v", ups, want)
	}
	if string(chain) != string(chain0) {
		t.Fatal("the rollback started a new chain")
	}
	if _, err := os.Stat(filepath.Join(dir, status.UpdateRollbackReportedFile)); err != nil {
		t.Fatalf("the reported rollback was not marked: %v", err)
	}
	if u := status.ReadUpdate(dir); u == nil || u.LastRollback == nil || u.LastRollback.From != "v0.2.0" || !u.LastRollback.Reported {
		t.Fatalf("status.ReadUpdate = %+v, want the reported rollback of v0.2.0", u)
	}

	// A plain restart signs neither again.
	recs = runVersion(t, dir, "v0.1.0")
	boot, ups, _ = lastStart(t, recs)
	if boot.Reason != attest.BootStart || len(ups) != 0 {
		t.Fatalf("plain restart: boot %+v, updates %+v; want start and none", boot, ups)
	}
}

// TestOutboxOfThePreviousReleaseContinues opens an outbox and key written by
// the release before this one (commit 66e3ab3, the state of main when the
// update records were added: 46 records of a counter and a GNSS track), runs
// this version on it and checks that the chain continues: same chain, the
// next seq, every old and new record verifies, nothing lost or forked.
func TestOutboxOfThePreviousReleaseContinues(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"outbox.db", "device.key"} {
		b, err := os.ReadFile(filepath.Join("testdata", "outbox-66e3ab3", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(filepath.Join(dir, "outbox.db"), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("this version cannot open the previous release's outbox: %v", err)
	}
	before := st.Head()
	st.Close()
	if before.Seq != 46 {
		t.Fatalf("fixture head seq %d, want 46", before.Seq)
	}

	recs := runVersion(t, dir, "v0.2.0")
	var chains = map[[16]byte]int{}
	for _, r := range recs {
		chains[r.Claims.Chain]++
	}
	if len(chains) != 1 || chains[before.Chain] != len(recs) {
		t.Fatalf("records in %d chains, want all %d in the fixture's chain %x", len(chains), len(recs), before.Chain)
	}
	if last := recs[len(recs)-1].Claims.Seq; last <= before.Seq {
		t.Fatalf("last seq %d after the run, want more than the fixture's %d", last, before.Seq)
	}
	boot, _, _ := lastStart(t, recs)
	if boot.Reason != attest.BootStart || boot.Version != "v0.2.0" {
		t.Fatalf("first start of this version on an old outbox: boot %+v, want reason start", boot)
	}
}
