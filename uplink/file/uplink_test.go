package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/edge-agent/edge-agent/store"
	"github.com/edge-agent/edge-agent/uplink"
	"github.com/edge-agent/edge-agent/uplink/uplinktest"
)

// logBuf collects log output safely across goroutines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newUplink(tb testing.TB, dir string, mod func(*Opts)) (*Uplink, *logBuf) {
	tb.Helper()
	logs := &logBuf{}
	o := DefaultOpts(dir)
	o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if mod != nil {
		mod(&o)
	}
	u, err := New(o)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	u.retryMin, u.retryMax = 5*time.Millisecond, 40*time.Millisecond
	return u, logs
}

// start runs u in the background; the returned stop cancels it and fails tb
// unless Run returns nil promptly.
func start(tb testing.TB, u *Uplink, q uplink.Queue) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx, q) }()
	var once sync.Once
	stop = func() {
		tb.Helper()
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("Run: %v, want nil after cancel", err)
				}
			case <-time.After(5 * time.Second):
				tb.Errorf("Run did not return within 5s of cancel")
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

// spoolFiles lists the sealed and open files in dir, ordered by first seq.
func spoolFiles(tb testing.TB, dir string) (sealed, parts []string) {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		switch n := e.Name(); {
		case strings.HasSuffix(n, partExt):
			parts = append(parts, n)
		case strings.HasSuffix(n, doneExt):
			sealed = append(sealed, n)
		}
	}
	firstSeq := func(name string) int {
		f := strings.Split(strings.TrimSuffix(strings.TrimSuffix(name, partExt), doneExt), "-")
		n, _ := strconv.Atoi(f[2])
		return n
	}
	slices.SortFunc(sealed, func(a, b string) int { return firstSeq(a) - firstSeq(b) })
	return sealed, parts
}

// readItems decodes every item in the named files, in order.
func readItems(tb testing.TB, dir string, names []string) [][]byte {
	tb.Helper()
	var items [][]byte
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			tb.Fatal(err)
		}
		dec := cbor.NewDecoder(bytes.NewReader(data))
		for {
			var raw cbor.RawMessage
			err := dec.Decode(&raw)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				tb.Fatalf("%s: item %d: %v", n, len(items), err)
			}
			items = append(items, raw)
		}
	}
	return items
}

func requireSpooled(tb testing.TB, dir string, want []store.Record) {
	tb.Helper()
	sealed, parts := spoolFiles(tb, dir)
	if len(parts) != 0 {
		tb.Fatalf("open files left: %v", parts)
	}
	got := readItems(tb, dir, sealed)
	if len(got) != len(want) {
		tb.Fatalf("spool holds %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i].Data) {
			tb.Fatalf("record %d (seq %d) differs from the queue's bytes", i, want[i].Seq)
		}
	}
}

// checkingQueue fails the test if a record is acked before its bytes are in
// a spool file.
type checkingQueue struct {
	*uplinktest.Queue
	tb  testing.TB
	dir string
}

func (q *checkingQueue) Ack(upTo uint64) error {
	recs := q.Records()
	i := slices.IndexFunc(recs, func(r store.Record) bool { return r.Seq == upTo })
	found := false
	if i >= 0 {
		entries, _ := os.ReadDir(q.dir)
		for _, e := range entries {
			data, _ := os.ReadFile(filepath.Join(q.dir, e.Name()))
			found = found || bytes.Contains(data, recs[i].Data)
		}
	}
	if !found {
		q.tb.Errorf("ack %d before the record is in a spool file", upTo)
	}
	return q.Queue.Ack(upTo)
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		o    Opts
		want error
	}{
		{"no dir", Opts{}, ErrMissingDir},
		{"negative rotate bytes", Opts{Dir: "x", RotateBytes: -1}, ErrInvalidOption},
		{"negative interval", Opts{Dir: "x", RotateInterval: -time.Second}, ErrInvalidOption},
		{"negative batch", Opts{Dir: "x", BatchMax: -1}, ErrInvalidOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.o); !errors.Is(err, tt.want) {
				t.Fatalf("New: %v, want %v", err, tt.want)
			}
		})
	}
	u, err := New(Opts{Dir: "x"})
	if err != nil || u.Name() != "file" || u.o.RotateBytes != DefaultRotateBytes || u.o.BatchMax != DefaultBatchMax || u.o.RotateInterval != 0 {
		t.Fatalf("New(Opts{Dir}) = %+v, %v: want defaults and size-only rotation", u, err)
	}
}

func TestSpoolsInOrderAndAcksAfterWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	q := &checkingQueue{Queue: uplinktest.NewQueue(), tb: t, dir: dir}
	q.AddN(250, 300) // a backlog larger than a batch
	u, _ := newUplink(t, dir, func(o *Opts) { o.BatchMax = 100 })
	stop := start(t, u, q)
	q.WaitAcked(t, 250, 5*time.Second)
	for range 20 { // records arriving one by one while Run waits
		q.AddN(1, 500)
		time.Sleep(time.Millisecond)
	}
	q.WaitAcked(t, 270, 5*time.Second)
	stop()
	requireSpooled(t, dir, q.Records())
	acks := q.Acks()
	if !slices.IsSorted(acks) || acks[0] != 100 {
		t.Fatalf("acks %v: want batches of 100 first, ascending", acks)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o750 {
		t.Fatalf("spool dir: %v, %v: want created 0750", st, err)
	}
}

func TestRotation(t *testing.T) {
	tests := []struct {
		name      string
		mod       func(*Opts)
		recSize   int
		records   int
		minFiles  int
		maxBytes  int64
		pause     time.Duration // between halves, with Run idle
		wantAfter func(tb testing.TB, sealed, parts []string)
	}{
		{name: "by size", mod: func(o *Opts) { o.RotateBytes = 4096 }, recSize: 300, records: 100,
			minFiles: 100 * 300 / 4096, maxBytes: 4096},
		{name: "one big record per file", mod: func(o *Opts) { o.RotateBytes = 100 }, recSize: 300, records: 5,
			minFiles: 5, maxBytes: 400},
		{name: "by interval while idle", mod: func(o *Opts) { o.RotateInterval = 50 * time.Millisecond }, recSize: 300, records: 40,
			minFiles: 2, maxBytes: DefaultRotateBytes, pause: 300 * time.Millisecond,
			wantAfter: func(tb testing.TB, sealed, parts []string) {
				if len(parts) != 0 || len(sealed) != 1 {
					tb.Fatalf("after an idle interval: sealed %v, open %v: want the file sealed without new records", sealed, parts)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "spool")
			q := uplinktest.NewQueue()
			u, _ := newUplink(t, dir, tt.mod)
			stop := start(t, u, q)
			half := tt.records / 2
			q.AddN(half, tt.recSize)
			q.WaitAcked(t, uint64(half), 5*time.Second)
			time.Sleep(tt.pause)
			if tt.wantAfter != nil {
				sealed, parts := spoolFiles(t, dir)
				tt.wantAfter(t, sealed, parts)
			}
			q.AddN(tt.records-half, tt.recSize)
			q.WaitAcked(t, uint64(tt.records), 5*time.Second)
			stop()
			requireSpooled(t, dir, q.Records())
			sealed, _ := spoolFiles(t, dir)
			if len(sealed) < tt.minFiles {
				t.Fatalf("%d files, want at least %d", len(sealed), tt.minFiles)
			}
			for _, n := range sealed {
				st, err := os.Stat(filepath.Join(dir, n))
				if err != nil || st.Size() > tt.maxBytes {
					t.Fatalf("%s: %v bytes, want at most %d", n, st.Size(), tt.maxBytes)
				}
			}
		})
	}
}

func TestRepairLeftovers(t *testing.T) {
	good := []store.Record{uplinktest.Record(1, 200), uplinktest.Record(2, 300), uplinktest.Record(3, 250)}
	var goodBytes []byte
	for _, r := range good {
		goodBytes = append(goodBytes, r.Data...)
	}
	torn := uplinktest.Record(4, 400).Data
	tests := []struct {
		name     string
		content  []byte
		want     int  // records kept
		wantTail bool // a .tail file saved for a human
	}{
		{"torn last record", append(slices.Clone(goodBytes), torn[:len(torn)/2]...), 3, false},
		{"zeros after a crash", append(slices.Clone(goodBytes), make([]byte, 4096)...), 3, false},
		{"clean", slices.Clone(goodBytes), 3, false},
		{"garbage in the middle", append(append(slices.Clone(goodBytes[:len(good[0].Data)]), 0x01, 0x02), goodBytes[len(good[0].Data):]...), 1, true},
		{"only a torn record", torn[:10], 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			part := filepath.Join(dir, "records-20261121T101500-1"+partExt)
			if err := os.WriteFile(part, tt.content, 0o640); err != nil {
				t.Fatal(err)
			}
			// A sealed file from the same second must be neither touched nor
			// overwritten.
			other := filepath.Join(dir, "records-20261121T101500-1"+doneExt)
			if err := os.WriteFile(other, good[0].Data, 0o640); err != nil {
				t.Fatal(err)
			}
			q := uplinktest.NewQueue()
			u, logs := newUplink(t, dir, nil)
			stop := start(t, u, q)
			deadline := time.Now().Add(5 * time.Second)
			for {
				if _, parts := spoolFiles(t, dir); len(parts) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("leftover .part not repaired within 5s")
				}
				time.Sleep(5 * time.Millisecond)
			}
			stop()
			if got, _ := os.ReadFile(other); !bytes.Equal(got, good[0].Data) {
				t.Fatal("an earlier sealed file was changed")
			}
			sealed, _ := spoolFiles(t, dir)
			var repaired []string
			for _, n := range sealed {
				if filepath.Join(dir, n) != other {
					repaired = append(repaired, n)
				}
			}
			if tt.want == 0 {
				if len(repaired) != 0 {
					t.Fatalf("an empty leftover was sealed as %v", repaired)
				}
			} else {
				items := readItems(t, dir, repaired)
				if len(items) != tt.want {
					t.Fatalf("repaired file holds %d records, want %d", len(items), tt.want)
				}
				for i, it := range items {
					if !bytes.Equal(it, good[i].Data) {
						t.Fatalf("record %d changed by the repair", i)
					}
				}
			}
			_, err := os.Stat(filepath.Join(dir, "records-20261121T101500-1.tail"))
			if (err == nil) != tt.wantTail {
				t.Fatalf(".tail file exists: %v, want %v", err == nil, tt.wantTail)
			}
			if !strings.Contains(logs.String(), "repaired leftover spool file") {
				t.Fatalf("repair not logged:\n%s", logs)
			}
		})
	}
}

func TestNeverAppendsToEarlierFiles(t *testing.T) {
	dir := t.TempDir()
	now := func() time.Time { return time.Date(2026, 11, 21, 10, 15, 0, 0, time.UTC) }
	data := [][]byte{uplinktest.Record(1, 200).Data, uplinktest.Record(2, 200).Data}
	for run := range 3 {
		// A fresh queue each run, as after a store that lost its acks: same
		// second, same first seq, so every run's file name collides.
		q := uplinktest.NewQueue()
		q.Add(data...)
		u, _ := newUplink(t, dir, func(o *Opts) { o.Now = now })
		stop := start(t, u, q)
		q.WaitAcked(t, 2, 5*time.Second)
		stop()
		sealed, parts := spoolFiles(t, dir)
		if len(sealed) != run+1 || len(parts) != 0 {
			t.Fatalf("run %d: sealed %v open %v: want one new file per run", run, sealed, parts)
		}
		for _, n := range sealed {
			if items := readItems(t, dir, []string{n}); len(items) != 2 {
				t.Fatalf("run %d: %s holds %d records, want 2", run, n, len(items))
			}
		}
	}
}

// makeReadOnly makes dir unwritable, also for root (chattr +i, from the
// e2fsprogs package), and returns the undo.
func makeReadOnly(tb testing.TB, dir string) (undo func()) {
	tb.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o500); err != nil {
			tb.Fatal(err)
		}
		return func() { _ = os.Chmod(dir, 0o750) }
	}
	chattr, err := exec.LookPath("chattr")
	if err != nil {
		tb.Fatalf("running as root, the read-only test needs chattr: apt-get install -y e2fsprogs (%v)", err)
	}
	if out, err := exec.Command(chattr, "+i", dir).CombinedOutput(); err != nil {
		tb.Fatalf("chattr +i %s: %v: %s (the test dir's filesystem must support the immutable flag; set TMPDIR to an ext4 dir)", dir, err, out)
	}
	undone := false
	undo = func() {
		if !undone {
			undone = true
			if out, err := exec.Command(chattr, "-i", dir).CombinedOutput(); err != nil {
				tb.Errorf("chattr -i %s: %v: %s", dir, err, out)
			}
		}
	}
	tb.Cleanup(undo)
	return undo
}

func TestUnwritableDirRetriesThenRecovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	undo := makeReadOnly(t, dir)
	q := uplinktest.NewQueue()
	q.AddN(10, 300)
	u, logs := newUplink(t, dir, nil)
	stop := start(t, u, q)
	time.Sleep(300 * time.Millisecond)
	if acks := q.Acks(); len(acks) != 0 {
		t.Fatalf("acked %v while the dir was read-only", acks)
	}
	tries := strings.Count(logs.String(), "write spool file failed")
	if tries < 3 || tries > 30 {
		t.Fatalf("%d attempts in 300ms: want retries with backoff (5ms..40ms)\n%s", tries, logs)
	}
	if !strings.Contains(logs.String(), "not writable") {
		t.Fatalf("the log does not say what to do:\n%s", logs)
	}
	undo()
	q.WaitAcked(t, 10, 5*time.Second)
	stop()
	requireSpooled(t, dir, q.Records())
}

func TestDirGoneAfterStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	q := uplinktest.NewQueue()
	q.AddN(2, 300)
	// One record per file, so no file is open when the dir disappears.
	u, logs := newUplink(t, dir, func(o *Opts) { o.RotateBytes = 100 })
	stop := start(t, u, q)
	q.WaitAcked(t, 2, 5*time.Second)
	if err := os.Rename(dir, dir+".unmounted"); err != nil {
		t.Fatal(err)
	}
	q.AddN(3, 300)
	time.Sleep(200 * time.Millisecond)
	if acked, _ := q.Acked(); acked != 2 {
		t.Fatalf("acked %d with the dir gone, want 2", acked)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("Run recreated the spool dir after start")
	}
	if !strings.Contains(logs.String(), "mount the export disk") {
		t.Fatalf("the log does not say what to do:\n%s", logs)
	}
	if err := os.Rename(dir+".unmounted", dir); err != nil {
		t.Fatal(err)
	}
	q.WaitAcked(t, 5, 5*time.Second)
	stop()
	requireSpooled(t, dir, q.Records())
}

func TestQueueErrors(t *testing.T) {
	tests := []struct {
		name string
		set  func(q *uplinktest.Queue, err error)
	}{
		{"ack fails", (*uplinktest.Queue).SetAckErr},
		{"pending fails", (*uplinktest.Queue).SetPendingErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			q := uplinktest.NewQueue()
			q.AddN(5, 300)
			tt.set(q, errors.New("bbolt: database not open"))
			u, _ := newUplink(t, dir, nil)
			stop := start(t, u, q)
			time.Sleep(100 * time.Millisecond)
			if acked, _ := q.Acked(); acked != 0 {
				t.Fatalf("acked %d while the queue failed", acked)
			}
			tt.set(q, nil)
			q.WaitAcked(t, 5, 5*time.Second)
			stop()
			// Retrying an ack must not spool the records twice.
			requireSpooled(t, dir, q.Records())
		})
	}
}

func TestIdleRunDoesNotSpin(t *testing.T) {
	q := uplinktest.NewQueue()
	u, _ := newUplink(t, t.TempDir(), nil)
	start(t, u, q)
	time.Sleep(200 * time.Millisecond)
	if n := q.PendingCalls(); n > 2 {
		t.Fatalf("%d Pending calls in 200ms with nothing to send: a busy loop", n)
	}
	q.AddN(1, 100)
	q.WaitAcked(t, 1, time.Second)
}

func TestCancelSealsOpenFile(t *testing.T) {
	dir := t.TempDir()
	q := uplinktest.NewQueue()
	q.AddN(7, 300)
	u, logs := newUplink(t, dir, nil)
	stop := start(t, u, q)
	q.WaitAcked(t, 7, 5*time.Second)
	if _, parts := spoolFiles(t, dir); len(parts) != 1 {
		t.Fatalf("open files %v, want one before cancel", parts)
	}
	stop()
	requireSpooled(t, dir, q.Records())
	if !strings.Contains(logs.String(), "reason=shutdown") {
		t.Fatalf("seal on shutdown not logged:\n%s", logs)
	}
}

func BenchmarkSpool(b *testing.B) {
	for _, size := range []int{300, 2000} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			q := uplinktest.NewQueue()
			q.AddN(b.N, size)
			u, _ := newUplink(b, b.TempDir(), nil)
			b.SetBytes(int64(size))
			b.ResetTimer()
			start(b, u, q)
			q.WaitAcked(b, uint64(b.N), time.Minute)
		})
	}
}

// With a SyncInterval a trickle of records is written (and fsynced, and
// acked) in a few batches, not one write per record, and every record still
// arrives.
func TestSyncIntervalBatchesATrickle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	q := &checkingQueue{Queue: uplinktest.NewQueue(), tb: t, dir: dir}
	u, _ := newUplink(t, dir, func(o *Opts) { o.SyncInterval = 300 * time.Millisecond })
	stop := start(t, u, q)
	for range 30 {
		q.AddN(1, 200)
		time.Sleep(10 * time.Millisecond)
	}
	q.WaitAcked(t, 30, 5*time.Second)
	stop()
	requireSpooled(t, dir, q.Records())
	if acks := q.Acks(); len(acks) > 4 {
		t.Fatalf("30 records over ~300ms spooled in %d writes %v; want at most 4 with a 300ms sync interval", len(acks), acks)
	}
}

// TestFlushEndsThePacing: once Flush is closed (the daemon's final flush),
// records are written at once, not after the rest of a SyncInterval that
// would outlast the flush's deadline.
func TestFlushEndsThePacing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	q := &checkingQueue{Queue: uplinktest.NewQueue(), tb: t, dir: dir}
	flush := make(chan struct{})
	u, _ := newUplink(t, dir, func(o *Opts) { o.SyncInterval = time.Hour; o.Flush = flush })
	stop := start(t, u, q)
	defer stop()
	q.AddN(1, 200)
	q.WaitAcked(t, 1, 5*time.Second) // the first write is not paced
	q.AddN(1, 200)                   // this one waits an hour
	close(flush)
	q.WaitAcked(t, 2, 5*time.Second)
	q.AddN(1, 200) // and after the flush began, none waits
	q.WaitAcked(t, 3, 5*time.Second)
}
