//go:build soak

package main

// The hostile-conditions soak (`make soak`, not in the default run): each
// trial kind runs SOAK_TRIALS times against the real daemon binary and the
// table at the end says, per kind, how many records the outbox made durable,
// how many of them never arrived and were not announced by an agent.gap
// record (lost), how many arrived more than once (duplicated: allowed,
// receivers dedupe), how many were evicted with an announcement, how many
// were still in the outbox when the trial stopped the daemon (queued: the
// load runs to the end, and the next start sends them), and the daemon's
// peak RSS. The default `make test` runs one short trial of each
// kind elsewhere: TestCrashSIGKILL, store.TestFullDiskAcksAndEvicts,
// agent.TestStopWhileTheDiskRefusesWrites, mqtt.TestLostPubackIsResentWithDup
// and p2p.TestRogueRejectedNotForwarded (whose soak is in uplink/p2p).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/store"
	"github.com/edge-agent/edge-agent/uplink/mqtt/mqtttest"
)

type soakKind struct {
	name string
	run  func(t *testing.T, r *soakTally)
}

type soakTally struct {
	trials, failed                     int
	records, lost, duplicated, evicted int
	queued                             int
	peakRSS                            int64 // bytes, the highest VmHWM seen
	maxStop                            time.Duration
}

func TestSoak(t *testing.T) {
	n := 5
	if v, err := strconv.Atoi(os.Getenv("SOAK_TRIALS")); err == nil && v > 0 {
		n = v
	}
	kinds := []soakKind{
		{"sigkill", soakSIGKILL},
		{"disk-full", soakDiskFull},
		{"read-only", soakReadOnly},
		{"broker-fault", soakBrokerFault},
	}
	tallies := make([]soakTally, len(kinds))
	for k, kind := range kinds {
		for i := range n {
			ok := t.Run(fmt.Sprintf("%s/%d", kind.name, i), func(t *testing.T) { kind.run(t, &tallies[k]) })
			tallies[k].trials++
			if !ok {
				tallies[k].failed++
			}
		}
	}
	fmt.Printf("soak %-14s %6s %6s %8s %6s %10s %8s %7s %9s %9s\n", "kind", "trials", "failed", "records", "lost", "duplicated", "evicted", "queued", "peak RSS", "max stop")
	for k, kind := range kinds {
		r := tallies[k]
		fmt.Printf("soak %-14s %6d %6d %8d %6d %10d %8d %7d %7.1fMB %9s\n", kind.name, r.trials, r.failed, r.records, r.lost, r.duplicated, r.evicted,
			r.queued, float64(r.peakRSS)/1e6, r.maxStop.Round(10*time.Millisecond))
	}
}

// soakDaemon is a running edge-agent child process.
type soakDaemon struct {
	cmd *exec.Cmd
}

func startSoakDaemon(t *testing.T, cfg, dir string) *soakDaemon {
	return &soakDaemon{cmd: startAgent(t, cfg, dir)}
}

// rss is the process's peak resident set so far (VmHWM).
func (d *soakDaemon) rss() int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// kill ends the daemon with sig and notes its peak RSS; for SIGTERM it
// returns how long the stop took and fails the trial beyond systemd's 30 s.
func (d *soakDaemon) kill(t *testing.T, r *soakTally, sig syscall.Signal) time.Duration {
	t.Helper()
	r.peakRSS = max(r.peakRSS, d.rss())
	start := time.Now()
	d.cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		took := time.Since(start)
		if sig == syscall.SIGTERM {
			r.maxStop = max(r.maxStop, took)
			if err != nil {
				t.Errorf("daemon exited with %v after SIGTERM", err)
			}
		}
		return took
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-done
		t.Fatalf("daemon did not stop within 30 s of %v: systemd would kill it", sig)
	}
	return 0
}

// account reads what the trial delivered (CBOR records from files or MQTT
// messages) against the outbox's head, and adds the counts to r.
func account(t *testing.T, r *soakTally, dbPath string, delivered [][]byte) {
	t.Helper()
	st, err := store.Open(dbPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("outbox after the trial: %v", err)
	}
	head := st.Head().Seq
	pending := st.PendingGaps()
	queued := map[uint64]bool{}
	if err := st.Records(func(rec store.Record) error { queued[rec.Seq] = true; return nil }); err != nil {
		t.Fatalf("outbox after the trial: %v", err)
	}
	st.Close()
	audit := attest.NewAudit(attest.AuditOptions{})
	seen := map[uint64]bool{}
	var announced []attest.Range
	for _, raw := range delivered {
		v, rec, err := audit.Add(raw)
		switch v {
		case attest.BadSignature, attest.Malformed, attest.Forked:
			t.Errorf("delivered record: %v %v", v, err)
			continue
		}
		if rec == nil {
			continue
		}
		if seen[rec.Claims.Seq] {
			r.duplicated++
		}
		seen[rec.Claims.Seq] = true
	}
	for _, d := range audit.Report().Devices {
		for _, c := range d.Chains {
			announced = append(announced, c.AnnouncedGaps...)
		}
	}
	inRanges := func(q uint64, rs []attest.Range) bool {
		for _, g := range rs {
			if q >= g.From && q <= g.To {
				return true
			}
		}
		return false
	}
	// Delivery is in seq order and only acked or evicted records leave the
	// outbox, so what precedes the first delivered seq was evicted; its
	// agent.gap record may have been evicted after it (see docs).
	first := head + 1
	for q := range seen {
		first = min(first, q)
	}
	for q := uint64(1); q <= head; q++ {
		switch {
		case seen[q]:
		case queued[q]:
			r.queued++
		case q < first:
			r.evicted++
		case inRanges(q, announced):
			r.evicted++
		case inRanges(q, toAttest(pending)):
			r.evicted++ // evicted, its agent.gap record not yet sent
		default:
			r.lost++
			if r.lost <= 5 {
				t.Errorf("seq %d of %d was durable but neither delivered nor announced", q, head)
			}
		}
	}
	r.records += int(head)
}

func toAttest(rs []store.Range) []attest.Range {
	out := make([]attest.Range, len(rs))
	for i, g := range rs {
		out[i] = attest.Range{From: g.From, To: g.To}
	}
	return out
}

// spooled returns every record in the file uplink's spool.
func spooled(t *testing.T, spool string) [][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(spool, "*.cbor"))
	sort.Strings(files)
	var out [][]byte
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		err = attest.ReadSequence(f, func(raw []byte) error { out = append(out, append([]byte(nil), raw...)); return nil })
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return out
}

const soakLoad = `
[[drivers.sim]]
name = "load"
kind = "counter"
interval = "200us"
`

const soakFileUplink = `
[uplinks.file]
enabled = true
dir = "%s"
rotate_bytes = "256KiB"
rotate_interval = "1s"
`

// waitDelivered polls the status socket until the uplink has acked every
// record that was durable when the wait began. The load keeps running, and
// with a commit window the backlog is never empty while it does.
func waitDelivered(t *testing.T, dir string, timeout time.Duration) {
	t.Helper()
	c := &status.Client{Socket: filepath.Join(dir, "status.sock"), Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var target uint64
	for time.Now().Before(deadline) {
		if doc, err := c.Fetch(context.Background()); err == nil && len(doc.Uplinks) > 0 {
			if target == 0 {
				target = max(doc.Store.HeadSeq, 1)
			}
			if doc.Uplinks[0].AckedSeq >= target {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("the uplink had not acked seq %d within %v", target, timeout)
}

// soakSIGKILL kills the daemon at random moments and restarts it.
func soakSIGKILL(t *testing.T, r *soakTally) {
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	cfg := writeConfig(t, dir, soakLoad+fmt.Sprintf(soakFileUplink, spool))
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for range 4 {
		d := startSoakDaemon(t, cfg, dir)
		time.Sleep(time.Duration(150+rng.Intn(700)) * time.Millisecond)
		d.kill(t, r, syscall.SIGKILL)
	}
	d := startSoakDaemon(t, cfg, dir)
	time.Sleep(time.Second)
	waitDelivered(t, dir, 20*time.Second)
	d.kill(t, r, syscall.SIGTERM)
	account(t, r, filepath.Join(dir, "outbox.db"), spooled(t, spool))
}

// soakDiskFull fills the outbox's filesystem while the uplink is away, then
// brings the uplink back on the still-full disk.
func soakDiskFull(t *testing.T, r *soakTally) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", data, "tmpfs", 0, "size=16m,mode=0700"); err != nil {
		t.Fatalf("mount a tmpfs (the soak runs as root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(data, syscall.MNT_DETACH) })
	spool := filepath.Join(dir, "spool")
	if err := os.Mkdir(spool, 0o750); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, soakLoad+fmt.Sprintf(soakFileUplink, spool)+
		fmt.Sprintf("[store]\npath = %q\nmax_bytes = \"256MiB\"\n", filepath.Join(data, "outbox.db")))
	chattrSoak(t, "+i", spool) // the uplink is away
	d := startSoakDaemon(t, cfg, dir)
	time.Sleep(time.Second)
	fillDisk(t, data)
	time.Sleep(3 * time.Second) // appends now evict
	chattrSoak(t, "-i", spool)  // the uplink is back; the disk is still full
	waitDelivered(t, dir, 30*time.Second)
	d.kill(t, r, syscall.SIGTERM)
	account(t, r, filepath.Join(data, "outbox.db"), spooled(t, spool))
}

// soakReadOnly makes the outbox refuse writes, stops the daemon with
// SIGTERM, then lets it recover and drain.
func soakReadOnly(t *testing.T, r *soakTally) {
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	cfg := writeConfig(t, dir, soakLoad+fmt.Sprintf(soakFileUplink, spool))
	db := filepath.Join(dir, "outbox.db")
	d := startSoakDaemon(t, cfg, dir)
	time.Sleep(time.Second)
	chattrSoak(t, "+i", db)
	time.Sleep(time.Second)
	d.kill(t, r, syscall.SIGTERM)
	chattrSoak(t, "-i", db)
	d = startSoakDaemon(t, cfg, dir)
	time.Sleep(time.Second)
	waitDelivered(t, dir, 20*time.Second)
	d.kill(t, r, syscall.SIGTERM)
	account(t, r, db, spooled(t, spool))
}

// soakBrokerFault publishes through a proxy that drops PUBACKs, restarts
// the broker mid-run and SIGKILLs the daemon once.
func soakBrokerFault(t *testing.T, r *soakTally) {
	b := mqtttest.Start(t, mqtttest.Config{Persistence: true}) // the recorder's session survives the restart
	rec := mqtttest.Record(t, b.URL(), "edge-agent/+/att/#")
	proxy := mqtttest.DropPubacks(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port())), 400)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `
[[drivers.sim]]
name = "load"
kind = "counter"
interval = "1ms"
count = 1500

[uplinks.mqtt]
enabled = true
servers = ["`+proxy.URL()+`"]
`)
	d := startSoakDaemon(t, cfg, dir)
	time.Sleep(500 * time.Millisecond)
	b.Stop() // the broker goes away for a second, then comes back
	time.Sleep(time.Second)
	b.Restart()
	time.Sleep(500 * time.Millisecond)
	d.kill(t, r, syscall.SIGKILL)
	d = startSoakDaemon(t, cfg, dir)
	time.Sleep(2 * time.Second)
	waitDelivered(t, dir, 60*time.Second)
	d.kill(t, r, syscall.SIGTERM)
	msgs := rec.Messages()
	raws := make([][]byte, 0, len(msgs))
	for _, m := range msgs {
		raws = append(raws, m.Payload)
	}
	account(t, r, filepath.Join(dir, "outbox.db"), raws)
	t.Logf("%d PUBACKs dropped", proxy.Dropped())
}

func chattrSoak(t *testing.T, flag, path string) {
	t.Helper()
	if out, err := exec.Command("chattr", flag, path).CombinedOutput(); err != nil {
		t.Fatalf("chattr %s %s: %v: %s", flag, path, err, out)
	}
}

// fillDisk writes a ballast file until the filesystem refuses more.
func fillDisk(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "ballast"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for _, n := range []int{len(buf), 4096, 1} {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill: %v", err)
				}
				break
			}
		}
	}
}
