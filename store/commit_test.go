package store_test

import (
	"bytes"
	"os"
	"strconv"
	"testing"
	"time"
)

// With AckDelay an Ack costs no commit: the next Append carries it and
// deletes what it allows, and Close stores what is left.
func TestDeferredAcksRideWithAppend(t *testing.T) {
	path := dbPath(t)
	opts, _ := testOptions(t, 1)
	opts.Uplinks = []string{"a"}
	opts.AckDelay = time.Hour // only Append and Close may carry the acks here
	s := openStore(t, path, opts)
	q := s.Queue("a")
	// 4000-byte records: five of them are enough acked bytes to delete.
	mustAppend(t, s, entries(t, 0, 10, 4000), nil)

	before := s.Writes().Commits
	if err := q.Ack(5); err != nil {
		t.Fatal(err)
	}
	if got := s.Writes().Commits; got != before {
		t.Fatalf("a deferred Ack committed: %d commits, want %d", got, before)
	}
	if got, _ := q.Acked(); got != 5 {
		t.Fatalf("Acked = %d after Ack(5)", got)
	}
	if err := q.Ack(11); err == nil {
		t.Fatal("an ack beyond the head was taken")
	}
	if st, _ := s.Stats(); st.Records != 10 || st.Uplinks[0].Acked != 5 {
		t.Fatalf("before the next commit: %d records, acked %d; want 10 and 5", st.Records, st.Uplinks[0].Acked)
	}

	mustAppend(t, s, entries(t, 10, 1, 4000), nil)
	if got := s.Writes().Commits; got != before+1 {
		t.Fatalf("Append with a pending ack made %d commits, want 1", got-before)
	}
	if got := storedSeqs(t, s); len(got) != 6 || got[0] != 6 {
		t.Fatalf("after the Append that carried Ack(5): stored %v, want 6-11", got)
	}

	if err := q.Ack(11); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, opts)
	if got, _ := s.Queue("a").Acked(); got != 11 {
		t.Fatalf("after Close and reopen: acked %d, want 11 (Close must store pending acks)", got)
	}
	if got := storedSeqs(t, s); len(got) != 0 {
		t.Fatalf("after reopen: stored %v, want none", got)
	}
}

// With no Append coming, the deferred ack is committed on its own within
// AckDelay, once.
func TestDeferredAckCommitsAlone(t *testing.T) {
	opts, _ := testOptions(t, 2)
	opts.Now = time.Now // the meter and the timer run on real time here
	opts.Uplinks = []string{"a"}
	opts.AckDelay = 50 * time.Millisecond
	s := openStore(t, dbPath(t), opts)
	mustAppend(t, s, entries(t, 0, 4, 5000), nil)
	before := s.Writes().Commits
	for seq := uint64(1); seq <= 4; seq++ {
		if err := s.Queue("a").Ack(seq); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(storedSeqs(t, s)) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("acked records still stored 5s after the ack, with AckDelay 50ms")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if got := s.Writes().Commits - before; got != 1 {
		t.Fatalf("four acks made %d commits, want 1", got)
	}
}

// The store's own count of what it wrote agrees with what the kernel says
// this process dirtied (/proc/self/io write_bytes), so status and doctor
// show a true wear figure.
func TestWriteAccountingMatchesKernel(t *testing.T) {
	opts, _ := testOptions(t, 3)
	opts.Now = time.Now
	opts.Uplinks = []string{"a"}
	s := openStore(t, dbPath(t), opts)
	mustAppend(t, s, entries(t, 0, 1, 400), nil)

	w0, k0 := s.Writes(), procWriteBytes(t)
	const n = 60
	for i := uint64(1); i < n; i++ {
		mustAppend(t, s, entries(t, i, 1, 400), nil)
		if err := s.Queue("a").Ack(i); err != nil {
			t.Fatal(err)
		}
	}
	w1, k1 := s.Writes(), procWriteBytes(t)
	if got := w1.Commits - w0.Commits; got != 2*(n-1) {
		t.Fatalf("%d appends and acks with no AckDelay made %d commits, want %d", n-1, got, 2*(n-1))
	}
	ours, kernel := float64(w1.Bytes-w0.Bytes), float64(k1-k0)
	t.Logf("%d commits: the store counts %.0f bytes, the kernel %.0f", w1.Commits-w0.Commits, ours, kernel)
	if ours < 0.7*kernel || ours > 1.3*kernel {
		t.Fatalf("the store counts %.0f bytes written, the kernel %.0f: more than 30%% apart", ours, kernel)
	}
	if w1.PerSecond <= 0 {
		t.Fatalf("write rate %v after %d commits", w1.PerSecond, w1.Commits)
	}
}

// Acked records below deleteMinBytes stay until more are acked: deleting a
// few records at a time would rewrite the first leaf page at every commit.
func TestDeferredDeletesWaitForAFewPages(t *testing.T) {
	opts, _ := testOptions(t, 4)
	opts.Uplinks = []string{"a"}
	opts.AckDelay = time.Hour
	s := openStore(t, dbPath(t), opts)
	mustAppend(t, s, entries(t, 0, 100, 400), nil)
	for i := uint64(1); i <= 10; i++ {
		if err := s.Queue("a").Ack(i * 5); err != nil {
			t.Fatal(err)
		}
		mustAppend(t, s, entries(t, 99+i, 1, 400), nil)
		stored := storedSeqs(t, s)
		// 16 KiB of acked 400-byte records is about 40 of them.
		if first := stored[0]; i*5 < 35 && first != 1 || first > i*5+1 {
			t.Fatalf("after Ack(%d): oldest stored %d", i*5, first)
		}
		if i == 10 && stored[0] == 1 {
			t.Fatal("50 acked records (20 KB) were never deleted")
		}
	}
}

func procWriteBytes(tb testing.TB) uint64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("write_bytes: ")); ok {
			n, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Fatal("no write_bytes in /proc/self/io")
	return 0
}
