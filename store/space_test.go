package store_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory (the test runs
// as root, as `make test` does) and unmounts it at the end.
func mountTmpfs(tb testing.TB, size int64) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Fatal("this test mounts a small tmpfs to fill it: run it as root (make test does)")
	}
	dir := tb.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		tb.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	tb.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			tb.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file until the filesystem refuses more, and returns its path.
func fill(tb testing.TB, dir string) string {
	tb.Helper()
	path := filepath.Join(dir, "ballast")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				tb.Fatalf("fill: %v", err)
			}
			break
		}
	}
	for _, n := range []int{4096, 512, 1} { // the last partial blocks
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
	return path
}

// A full disk must not deadlock the outbox: with the broker away the
// records pile up until the filesystem is full; appends then evict the
// oldest records (announced as gaps) instead of failing, and when the
// broker is back every ack and delete succeeds, on the still-full disk.
func TestFullDiskAcksAndEvicts(t *testing.T) {
	dir := mountTmpfs(t, 8<<20)
	opts, _ := testOptions(t, 1)
	opts.MaxBytes = 64 << 20 // larger than the filesystem, as on a small card
	opts.Uplinks = []string{"mqtt"}
	opts.EvictHeadroom = 256 << 10
	opts.Reserve = 1 << 20
	s := openStore(t, filepath.Join(dir, "outbox.db"), opts)

	// Broker offline: records pile up, then someone else fills the card.
	var head uint64
	appendN := func(rounds int) {
		t.Helper()
		for i := 0; i < rounds; i++ {
			if _, err := s.Append(entries(t, head, 64, 300), nil); err != nil {
				t.Fatalf("append of seqs %d-%d on a full disk: %v", head+1, head+64, err)
			}
			head += 64
		}
	}
	appendN(50)
	ballast := fill(t, dir)
	appendN(400) // ~7.5 MB more than the filesystem holds

	gaps := s.PendingGaps()
	stored := storedSeqs(t, s)
	if len(gaps) == 0 || len(stored) == 0 {
		t.Fatalf("after filling the disk: %d records stored, gaps %v; want both", len(stored), gaps)
	}
	// Every seq is either stored or in a pending gap: nothing vanished.
	inGap := func(q uint64) bool {
		for _, g := range gaps {
			if q >= g.From && q <= g.To {
				return true
			}
		}
		return false
	}
	storedSet := map[uint64]bool{}
	for _, q := range stored {
		storedSet[q] = true
	}
	for q := uint64(1); q <= head; q++ {
		if !storedSet[q] && !inGap(q) {
			t.Fatalf("seq %d is neither stored nor announced as a gap", q)
		}
	}
	if last := stored[len(stored)-1]; last != head {
		t.Fatalf("newest stored seq %d, want the head %d: a full disk must cost the oldest records", last, head)
	}

	// Broker back online, disk still full: acks and deletes go through.
	q := s.Queue("mqtt")
	for _, upTo := range []uint64{stored[len(stored)/2], head} {
		if err := q.Ack(upTo); err != nil {
			t.Fatalf("ack up to %d on a full disk: %v", upTo, err)
		}
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 0 {
		t.Fatalf("%d records left after acking everything", st.Records)
	}
	// And it keeps working once the space is back.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	appendN(10)
	if err := q.Ack(head); err != nil {
		t.Fatal(err)
	}
}

// After a drain the file gives its space back (bbolt never shrinks a file by
// itself), and the compacted outbox carries on: same chain and head, acks,
// appends, and a reopen.
func TestDrainCompactsTheFile(t *testing.T) {
	path := dbPath(t)
	opts, clk := testOptions(t, 2)
	opts.Uplinks = []string{"mqtt"}
	opts.Reserve = 1 << 20
	s := openStore(t, path, opts)
	var head uint64
	for i := 0; i < 100; i++ { // 100 × 256 × 1 KiB = 25 MiB of backlog
		mustAppend(t, s, entries(t, head, 256, 1024), nil)
		head += 256
	}
	before := fileSize(t, path)
	q := s.Queue("mqtt")
	start := time.Now()
	if err := q.Ack(head - 10); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	after := fileSize(t, path)
	t.Logf("file %d bytes before the drain, %d after; the ack that deleted and compacted took %v", before, after, took.Round(time.Millisecond))
	if before < 25<<20 || after > 2<<20 {
		t.Fatalf("file %d bytes before the drain, %d after: want ≥ 25 MiB, then ≤ 2 MiB", before, after)
	}
	if got := storedSeqs(t, s); len(got) != 10 || got[0] != head-9 {
		t.Fatalf("after compaction stored %v, want the last 10 seqs", got)
	}
	clk.t = clk.t.Add(time.Hour)
	mustAppend(t, s, entries(t, head, 5, 100), nil)
	head += 5
	if err := q.Ack(head); err != nil {
		t.Fatal(err)
	}
	chain := s.Head().Chain
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, path, opts)
	if h := s2.Head(); h.Seq != head || h.Chain != chain {
		t.Fatalf("reopened head %d chain %x, want %d %x", h.Seq, h.Chain, head, chain)
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Fatalf("a temporary file is left: %v", err)
	}
}

func fileSize(tb testing.TB, path string) int64 {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}
