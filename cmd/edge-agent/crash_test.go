package main

import (
	"bytes"
	"context"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/store"
)

// TestCrashSIGKILL runs the real daemon with a fast simulated source and the
// file uplink, kills it with SIGKILL at random moments and restarts it. After
// every kill it reads the outbox: a record once seen durable must never change
// and must end up delivered byte for byte; everything the uplink acked must be
// in the spool. At the end the spool's chain must verify with no unannounced
// gap and no fork, and the outbox must pass its consistency check.
//
// It runs with the default durability window (pipeline.commit_interval):
// while the daemon runs, a poller reads the head seq that `status` reports
// stored, and after every kill the outbox must hold at least that head —
// reported durable means committed, never "signed and waiting".
func TestCrashSIGKILL(t *testing.T) {
	kills := 24
	if testing.Short() {
		kills = 5
	}
	crashTest(t, kills, "")
}

// TestCrashSIGKILLNoWindow is the same with commit_interval = "0s": every
// batch and every ack committed at once, as before the window existed.
func TestCrashSIGKILLNoWindow(t *testing.T) {
	kills := 6
	if testing.Short() {
		kills = 3
	}
	crashTest(t, kills, "[pipeline]\ncommit_interval = \"0s\"\n")
}

// TestCrashSIGKILLStretchedWindow is the same at a trickle, where the window
// stretches (pipeline.commit_min_records): kills land while signed records
// wait past commit_interval for more, and what status reported stored must
// still survive.
func TestCrashSIGKILLStretchedWindow(t *testing.T) {
	kills := 8
	if testing.Short() {
		kills = 4
	}
	crashTestAt(t, kills, "[pipeline]\ncommit_interval = \"100ms\"\ncommit_min_records = 20\ncommit_interval_max = \"1s\"\n", "20ms", 50)
}

func crashTest(t *testing.T, kills int, extra string) { crashTestAt(t, kills, extra, "200us", 1000) }

// crashTestAt runs the crash test with the load source at one record per
// interval, and wants at least minRecords records in the whole run.
func crashTestAt(t *testing.T, kills int, extra, interval string, minRecords uint64) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, extra+`
[[drivers.sim]]
name = "load"
kind = "counter"
interval = "`+interval+`"

[uplinks.file]
enabled = true
rotate_bytes = "256KiB"
rotate_interval = "1s"
`)
	dbPath := filepath.Join(dir, "outbox.db")
	spool := filepath.Join(dir, "spool")

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)

	durable := map[uint64][]byte{} // every record ever seen in the outbox
	var ackedMax uint64
	var reportedMax uint64 // the highest head seq `status` ever reported
	// Every run that committed anything stored its agent.boot record first.
	// A run killed inside its first commit window stored nothing, not even
	// that: it was never reported durable, so nothing is owed.
	var lastHead uint64
	bootsStored := 1 // the final clean run
	for i := 0; i < kills; i++ {
		cmd := startAgent(t, cfgPath, dir)
		// Up to 1.2s: past the first commits, by count (batch_max) at this load.
		stopPoll, reported := pollReportedHead(filepath.Join(dir, "status.sock"))
		time.Sleep(time.Duration(150+rng.Intn(1050)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		stopPoll()
		cmd.Wait()
		reportedMax = max(reportedMax, reported())

		st, err := store.Open(dbPath, store.Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("kill %d: outbox does not open after SIGKILL: %v", i, err)
		}
		if err := st.Check(); err != nil {
			t.Fatalf("kill %d: consistency check after SIGKILL: %v", i, err)
		}
		if rec := st.Recovery(); rec != nil {
			t.Fatalf("kill %d: the outbox was recovered as corrupt: %+v", i, rec)
		}
		acked, err := st.Queue("file").Acked()
		if err != nil {
			t.Fatal(err)
		}
		if acked < ackedMax {
			t.Fatalf("kill %d: acked cursor went back from %d to %d", i, ackedMax, acked)
		}
		ackedMax = acked
		err = st.Records(func(r store.Record) error {
			if old, ok := durable[r.Seq]; ok && !bytes.Equal(old, r.Data) {
				t.Fatalf("kill %d: seq %d changed after it was durable", i, r.Seq)
			}
			durable[r.Seq] = append([]byte(nil), r.Data...)
			return nil
		})
		head := st.Head().Seq
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		if head > lastHead {
			bootsStored++
		}
		lastHead = head
		if head < reportedMax {
			t.Fatalf("kill %d: status reported head seq %d stored, the outbox holds only up to %d after SIGKILL", i, reportedMax, head)
		}
		t.Logf("kill %2d: head %6d, acked %6d, in outbox %d", i, head, acked, len(durable))
	}

	// A last clean run drains the outbox, then SIGTERM must stop it quickly.
	cmd := startAgent(t, cfgPath, dir)
	time.Sleep(time.Second)
	cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("daemon did not exit 0 on SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("daemon did not exit within 10s of SIGTERM")
	}

	// Everything the spool holds.
	files, _ := filepath.Glob(filepath.Join(spool, "*"))
	sort.Strings(files)
	audit := attest.NewAudit(attest.AuditOptions{})
	delivered := map[uint64][]byte{}
	for _, name := range files {
		if filepath.Ext(name) != ".cbor" {
			t.Fatalf("spool has %s after a clean shutdown: open files must be sealed", name)
		}
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		err = attest.ReadSequence(f, func(raw []byte) error {
			v, rec, err := audit.Add(raw)
			if v == attest.BadSignature || v == attest.Malformed || v == attest.Forked {
				t.Errorf("%s: verdict %v: %v", name, v, err)
				return nil
			}
			delivered[rec.Claims.Seq] = append([]byte(nil), raw...)
			return nil
		})
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	rep := audit.Report()
	if !rep.OK() {
		t.Fatalf("spool does not verify: %+v", rep)
	}
	if len(rep.Devices) != 1 || len(rep.Devices[0].Chains) != 1 {
		t.Fatalf("want one device with one chain, got %+v", rep)
	}
	c := rep.Devices[0].Chains[0]
	if c.FirstSeq != 1 || c.Boots < bootsStored {
		t.Fatalf("chain starts at %d with %d boots; want 1 and at least %d (runs that stored records)", c.FirstSeq, c.Boots, bootsStored)
	}
	for seq, data := range durable {
		got, ok := delivered[seq]
		if !ok {
			t.Fatalf("seq %d was durable in the outbox but never delivered", seq)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("seq %d was delivered with other bytes than were stored", seq)
		}
	}
	for seq := uint64(1); seq <= ackedMax; seq++ {
		if _, ok := delivered[seq]; !ok {
			t.Fatalf("seq %d was acked by the file uplink but is not in the spool", seq)
		}
	}
	st, err := store.Open(dbPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Fatalf("final consistency check: %v", err)
	}
	t.Logf("%d kills: %d records delivered (seq 1-%d), %d duplicates re-sent after crashes, %d seen durable mid-run, status reported up to %d",
		kills, c.Records, c.LastSeq, c.Duplicates, len(durable), reportedMax)
	if reportedMax == 0 {
		t.Fatal("status never reported a stored head: the durability check did not run")
	}
	if c.LastSeq < minRecords {
		t.Fatalf("only %d records in the whole run: the load source is not loading", c.LastSeq)
	}
}

// pollReportedHead reads the daemon's status every few milliseconds until
// stop, and reports the highest store head seq it saw: what the daemon told
// the world is stored.
func pollReportedHead(socket string) (stop func(), reported func() uint64) {
	ctx, cancel := context.WithCancel(context.Background())
	var head atomic.Uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := &status.Client{Socket: socket, Timeout: time.Second}
		for ctx.Err() == nil {
			if doc, err := c.Fetch(ctx); err == nil && doc.Store.HeadSeq > head.Load() {
				head.Store(doc.Store.HeadSeq)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	// A fetch answered before the kill counts even if it lands after it:
	// the daemon said it before it died. So wait for the poller to finish.
	return func() { cancel(); <-done }, head.Load
}

func startAgent(t testing.TB, cfgPath, dir string) *exec.Cmd {
	t.Helper()
	log, err := os.OpenFile(filepath.Join(dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(agentBin, "run", "-c", cfgPath)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd
}
