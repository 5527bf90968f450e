package store_test

import (
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/store"
)

func TestAppendPendingAckDelete(t *testing.T) {
	opts, _ := testOptions(t, 1)
	opts.Uplinks = []string{"mqtt", "file"}
	s := openStore(t, dbPath(t), opts)
	mustAppend(t, s, entries(t, 0, 10, 50), nil)

	steps := []struct {
		name    string
		uplink  string
		ack     uint64
		stored  []uint64 // seqs left after the ack
		pending []uint64 // what that uplink sees next
	}{
		{"first uplink alone deletes nothing", "mqtt", 5, seqRange(1, 10), seqRange(6, 10)},
		{"second uplink below the first", "file", 3, seqRange(4, 10), seqRange(4, 10)},
		{"second uplink passes the first", "file", 8, seqRange(6, 10), seqRange(9, 10)},
		{"stale ack is a no-op", "file", 2, seqRange(6, 10), seqRange(9, 10)},
		{"both at the head empties the store", "mqtt", 10, seqRange(9, 10), nil},
		{"last one", "file", 10, nil, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			q := s.Queue(st.uplink)
			if err := q.Ack(st.ack); err != nil {
				t.Fatalf("Ack(%d): %v", st.ack, err)
			}
			if got := storedSeqs(t, s); !slices.Equal(got, st.stored) {
				t.Errorf("stored = %v, want %v", got, st.stored)
			}
			acked, err := q.Acked()
			if err != nil {
				t.Fatal(err)
			}
			recs, err := q.Pending(acked, 100)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, r := range recs {
				got = append(got, r.Seq)
			}
			if !slices.Equal(got, st.pending) {
				t.Errorf("Pending(%d) = %v, want %v", acked, got, st.pending)
			}
			if err := s.Check(); err != nil {
				t.Errorf("Check: %v", err)
			}
		})
	}
}

func TestPendingLimitsAndErrors(t *testing.T) {
	opts, _ := testOptions(t, 2)
	s := openStore(t, dbPath(t), opts)
	mustAppend(t, s, entries(t, 0, 20, 10), nil)
	q := s.Queue("mqtt")
	tests := []struct {
		name      string
		after     uint64
		max       int
		wantFirst uint64
		wantN     int
		wantErr   bool
	}{
		{"from start", 0, 5, 1, 5, false},
		{"middle", 7, 100, 8, 13, false},
		{"at head", 20, 10, 0, 0, false},
		{"max uint64", ^uint64(0), 10, 0, 0, false},
		{"zero max", 0, 0, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := q.Pending(tt.after, tt.max)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if len(recs) != tt.wantN {
				t.Fatalf("got %d records, want %d", len(recs), tt.wantN)
			}
			if tt.wantN > 0 && recs[0].Seq != tt.wantFirst {
				t.Errorf("first = %d, want %d", recs[0].Seq, tt.wantFirst)
			}
		})
	}
	if err := q.Ack(21); err == nil {
		t.Error("Ack beyond the head succeeded")
	}
}

func TestPersistsAcrossReopen(t *testing.T) {
	path := dbPath(t)
	opts, _ := testOptions(t, 3)
	opts.Uplinks = []string{"mqtt", "p2p"}
	s, err := store.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	es := entries(t, 0, 30, 100)
	mustAppend(t, s, es[:10], nil)
	mustAppend(t, s, es[10:], nil)
	if err := s.Queue("mqtt").Ack(25); err != nil {
		t.Fatal(err)
	}
	if err := s.Queue("p2p").Ack(12); err != nil {
		t.Fatal(err)
	}
	head := s.Head()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(entries(t, 30, 1, 10), nil); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}

	s = openStore(t, path, opts)
	if got := s.Head(); got != head {
		t.Errorf("head after reopen = %+v, want %+v", got, head)
	}
	if head.Seq != 30 || head.Hash != es[29].Hash {
		t.Errorf("head = %d %x, want 30 and the last entry's hash", head.Seq, head.Hash)
	}
	for name, want := range map[string]uint64{"mqtt": 25, "p2p": 12, "file": 0} {
		if got, err := s.Queue(name).Acked(); err != nil || got != want {
			t.Errorf("Acked(%s) = %d, %v; want %d", name, got, err, want)
		}
	}
	if got := storedSeqs(t, s); !slices.Equal(got, seqRange(13, 30)) {
		t.Errorf("stored = %v, want 13..30", got)
	}
	// The next append must continue the persisted head.
	mustAppend(t, s, entries(t, 30, 1, 10), nil)
	if s.Recovery() != nil {
		t.Errorf("Recovery() = %+v on a healthy file", s.Recovery())
	}
}

func TestUplinkRemovedFromConfigDeletesAtOpen(t *testing.T) {
	path := dbPath(t)
	opts, _ := testOptions(t, 4)
	opts.Uplinks = []string{"mqtt", "p2p"}
	s, err := store.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, entries(t, 0, 10, 10), nil)
	if err := s.Queue("mqtt").Ack(7); err != nil {
		t.Fatal(err)
	}
	if err := s.Queue("p2p").Ack(2); err != nil {
		t.Fatal(err)
	}
	s.Close()
	opts.Uplinks = []string{"mqtt"}
	s = openStore(t, path, opts)
	if got := storedSeqs(t, s); !slices.Equal(got, seqRange(8, 10)) {
		t.Errorf("stored = %v, want 8..10", got)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Uplinks) != 2 || st.Uplinks[1].Name != "p2p" || st.Uplinks[1].Configured {
		t.Errorf("Stats.Uplinks = %+v, want mqtt then the unconfigured p2p", st.Uplinks)
	}
}

func TestQuotaEvictionAndGaps(t *testing.T) {
	path := dbPath(t)
	opts, _ := testOptions(t, 5)
	opts.Uplinks = []string{"mqtt"}
	opts.MaxBytes = 1000 // ten 100-byte records
	s, err := store.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name      string
		n         int
		announced []store.Range
		evicted   []store.Range
		gaps      []store.Range
		stored    []uint64
	}{
		{"fills the quota", 10, nil, nil, nil, seqRange(1, 10)},
		{"evicts the oldest", 3, nil, []store.Range{{1, 3}}, []store.Range{{1, 3}}, seqRange(4, 13)},
		{"adjacent evictions merge", 2, nil, []store.Range{{4, 5}}, []store.Range{{1, 5}}, seqRange(6, 15)},
		{"announcing part clears part", 1, []store.Range{{1, 2}}, []store.Range{{6, 6}}, []store.Range{{3, 6}}, seqRange(7, 16)},
		{"announcing the rest", 1, []store.Range{{3, 6}}, []store.Range{{7, 7}}, []store.Range{{7, 7}}, seqRange(8, 17)},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			h := s.Head().Seq
			ev := mustAppend(t, s, entries(t, h, st.n, 100), st.announced)
			if !slices.Equal(ev, st.evicted) {
				t.Errorf("evicted = %v, want %v", ev, st.evicted)
			}
			if got := s.PendingGaps(); !slices.Equal(got, st.gaps) {
				t.Errorf("PendingGaps = %v, want %v", got, st.gaps)
			}
			if got := storedSeqs(t, s); !slices.Equal(got, st.stored) {
				t.Errorf("stored = %v, want %v", got, st.stored)
			}
			if err := s.Check(); err != nil {
				t.Errorf("Check: %v", err)
			}
		})
	}
	s.Close()

	s = openStore(t, path, opts)
	if got := s.PendingGaps(); !slices.Equal(got, []store.Range{{7, 7}}) {
		t.Errorf("PendingGaps after reopen = %v, want [{7 7}]", got)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Evicted != 7 || st.EvictedRanges != 4 || st.Bytes != 1000 || st.Records != 10 {
		t.Errorf("Stats = evicted %d in %d ranges, %d records of %d bytes; want 7 in 4, 10 of 1000",
			st.Evicted, st.EvictedRanges, st.Records, st.Bytes)
	}
}

func TestBatchLargerThanQuota(t *testing.T) {
	opts, _ := testOptions(t, 6)
	opts.MaxBytes = 500
	s := openStore(t, dbPath(t), opts)
	mustAppend(t, s, entries(t, 0, 3, 100), nil)
	es := entries(t, 3, 8, 100)
	ev := mustAppend(t, s, es, nil)
	if want := []store.Range{{1, 6}}; !slices.Equal(ev, want) {
		t.Errorf("evicted = %v, want %v", ev, want)
	}
	if got := storedSeqs(t, s); !slices.Equal(got, seqRange(7, 11)) {
		t.Errorf("stored = %v, want 7..11", got)
	}
	if h := s.Head(); h.Seq != 11 || h.Hash != es[7].Hash {
		t.Errorf("head = %d, want 11 with the last entry's hash", h.Seq)
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}

func TestNotContiguousWritesNothing(t *testing.T) {
	path := dbPath(t)
	opts, _ := testOptions(t, 7)
	opts.MaxBytes = 500
	s, err := store.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, entries(t, 0, 5, 100), nil)
	before, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	headBefore := s.Head()

	skip := entries(t, 5, 3, 100)
	skip[1].Seq = 9
	tests := []struct {
		name string
		es   []store.Entry
	}{
		{"starts after a hole", entries(t, 6, 2, 100)},
		{"repeats the head", entries(t, 4, 2, 100)},
		{"hole inside the batch", skip},
		{"from zero", entries(t, 0, 1, 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := s.Append(tt.es, []store.Range{{1, 1}})
			if !errors.Is(err, store.ErrNotContiguous) {
				t.Fatalf("Append = %v, want ErrNotContiguous", err)
			}
			if ev != nil {
				t.Errorf("evicted %v on a failed append", ev)
			}
			after, err := s.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if s.Head() != headBefore || after.Records != before.Records || after.Bytes != before.Bytes || after.Evicted != 0 {
				t.Errorf("state changed: head %d, %d records, %d evicted", s.Head().Seq, after.Records, after.Evicted)
			}
		})
	}
	s.Close()
	s = openStore(t, path, opts)
	if s.Head() != headBefore || !slices.Equal(storedSeqs(t, s), seqRange(1, 5)) {
		t.Errorf("after reopen: head %d, stored %v", s.Head().Seq, storedSeqs(t, s))
	}
}

func TestLocking(t *testing.T) {
	path := dbPath(t)
	opts, _ := testOptions(t, 8)
	s := openStore(t, path, opts)
	mustAppend(t, s, entries(t, 0, 3, 10), nil)

	tests := []struct {
		name     string
		readOnly bool
	}{
		{"read-only while a writer holds it", true},
		{"second writer", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := opts
			o.ReadOnly = tt.readOnly
			o.LockTimeout = 200 * time.Millisecond
			start := time.Now()
			s2, err := store.Open(path, o)
			if err == nil {
				s2.Close()
				t.Fatal("Open succeeded while the writer holds the lock")
			}
			if !errors.Is(err, store.ErrLocked) {
				t.Fatalf("Open = %v, want ErrLocked", err)
			}
			if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
				t.Errorf("gave up after %v, want about the 200ms timeout", d)
			}
		})
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the outbox is gone after failed opens: %v", err)
	}
}

func TestReadOnly(t *testing.T) {
	path := dbPath(t)
	opts, _ := testOptions(t, 9)
	opts.Uplinks = []string{"mqtt"}
	s, err := store.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, entries(t, 0, 4, 10), nil)
	s.Close()

	ro := opts
	ro.ReadOnly = true
	r1 := openStore(t, path, ro)
	r2 := openStore(t, path, ro) // shared lock: two inspectors at once
	if r1.Head().Seq != 4 || r2.Head().Seq != 4 {
		t.Errorf("read-only heads = %d, %d; want 4", r1.Head().Seq, r2.Head().Seq)
	}
	if _, err := r1.Append(entries(t, 4, 1, 10), nil); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("Append = %v, want ErrReadOnly", err)
	}
	if err := r1.Queue("mqtt").Ack(1); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("Ack = %v, want ErrReadOnly", err)
	}
	if err := r1.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	if _, err := store.Open(path+".missing", ro); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only Open of a missing file = %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(path + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Error("read-only Open created a file")
	}
}

func TestChanged(t *testing.T) {
	opts, _ := testOptions(t, 10)
	s, err := store.Open(dbPath(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	q1, q2 := s.Queue("a"), s.Queue("b")
	c1, c2 := q1.Changed(), q2.Changed()
	if c1 != c2 {
		t.Error("two queues got different channels for the same next append")
	}
	select {
	case <-c1:
		t.Fatal("Changed closed before any append")
	default:
	}
	mustAppend(t, s, entries(t, 0, 1, 10), nil)
	for i, c := range []<-chan struct{}{c1, c2} {
		select {
		case <-c:
		case <-time.After(time.Second):
			t.Fatalf("channel %d not closed by Append", i)
		}
	}
	c3 := q1.Changed()
	select {
	case <-c3:
		t.Fatal("the new channel is already closed")
	default:
	}
	s.Close()
	select {
	case <-c3:
	default:
		t.Fatal("Close did not wake waiters")
	}
	if _, err := q1.Pending(0, 1); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Pending after Close = %v, want ErrClosed", err)
	}
}

func TestStats(t *testing.T) {
	path := dbPath(t)
	opts, clk := testOptions(t, 11)
	opts.Uplinks = []string{"mqtt", "file"}
	opts.MaxBytes = 2000
	s := openStore(t, path, opts)
	first := clk.t
	mustAppend(t, s, entries(t, 0, 10, 100), nil)
	clk.t = clk.t.Add(time.Minute)
	mustAppend(t, s, entries(t, 10, 15, 100), nil) // evicts 1..5
	if err := s.Queue("mqtt").Ack(20); err != nil {
		t.Fatal(err)
	}
	if err := s.Queue("file").Ack(8); err != nil { // 6..8 deleted
		t.Fatal(err)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	want := store.Stats{
		Records: 17, Bytes: 1700, MaxBytes: 2000, FileBytes: fi.Size(), HeadSeq: 25, Chain: s.Head().Chain,
		OldestSeq: 9, OldestAppended: first, Evicted: 5, EvictedRanges: 1,
		PendingGaps: []store.Range{{1, 5}},
		Uplinks: []store.UplinkStats{
			{Name: "mqtt", Configured: true, Acked: 20, Backlog: 5},
			{Name: "file", Configured: true, Acked: 8, Backlog: 17},
		},
	}
	st.LastCheck = store.CheckResult{}
	if st.FileBytes <= 0 || st.Chain == ([16]byte{}) {
		t.Errorf("FileBytes %d, chain %x", st.FileBytes, st.Chain)
	}
	if !st.OldestAppended.Equal(want.OldestAppended) {
		t.Errorf("OldestAppended = %v, want %v", st.OldestAppended, want.OldestAppended)
	}
	st.OldestAppended = want.OldestAppended
	if !statsEqual(st, want) {
		t.Errorf("Stats =\n%+v\nwant\n%+v", st, want)
	}
}

func statsEqual(a, b store.Stats) bool {
	return slices.Equal(a.PendingGaps, b.PendingGaps) && slices.Equal(a.Uplinks, b.Uplinks) &&
		a.Recovery == nil && b.Recovery == nil &&
		a.Records == b.Records && a.Bytes == b.Bytes && a.MaxBytes == b.MaxBytes && a.FileBytes == b.FileBytes &&
		a.HeadSeq == b.HeadSeq && a.Chain == b.Chain && a.OldestSeq == b.OldestSeq && a.Evicted == b.Evicted &&
		a.EvictedRanges == b.EvictedRanges && a.LastCheck == b.LastCheck
}

// TestDeletesSkipNothing drives many batches, quota evictions and staggered
// acks from three uplinks. bbolt skips keys when deleting under a cursor that
// walks pages dirtied earlier in the same transaction (an eviction after the
// puts of the same Append, say); after every step the stored records must be
// exactly (max(lowest ack, last evicted), head].
func TestDeletesSkipNothing(t *testing.T) {
	opts, _ := testOptions(t, 12)
	opts.Uplinks = []string{"mqtt", "p2p", "file"}
	opts.MaxBytes = 64 << 10
	s := openStore(t, dbPath(t), opts)
	rng := rand.New(rand.NewPCG(1, 2))
	acked := map[string]uint64{}
	var evictedTo uint64
	for step := range 80 {
		h := s.Head().Seq
		for _, r := range mustAppend(t, s, entries(t, h, 1+rng.IntN(300), 40+rng.IntN(200)), nil) {
			evictedTo = max(evictedTo, r.To)
		}
		head := s.Head().Seq
		for _, u := range opts.Uplinks {
			if rng.IntN(3) == 0 {
				continue
			}
			to := acked[u] + uint64(rng.IntN(int(head-acked[u])+1))
			if err := s.Queue(u).Ack(to); err != nil {
				t.Fatalf("step %d: Ack(%s, %d): %v", step, u, to, err)
			}
			acked[u] = to
		}
		low := max(evictedTo, min(acked["mqtt"], acked["p2p"], acked["file"]))
		if got := storedSeqs(t, s); !slices.Equal(got, seqRange(low+1, head)) {
			t.Fatalf("step %d: stored %d records (first %v), want %d..%d", step, len(got), got[:min(len(got), 3)], low+1, head)
		}
	}
	if evictedTo == 0 {
		t.Error("the quota never evicted: the test lost its point")
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestCreatesPrivateFile(t *testing.T) {
	path := dbPath(t)
	opts, _ := testOptions(t, 13)
	openStore(t, path, opts)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("outbox mode = %v, want 0600", fi.Mode().Perm())
	}
}

// TestConcurrentAppendAck runs the pipeline's Append, two uplinks' Pending
// and Ack, and an inspector's Stats and Check at once (run it with -race).
func TestConcurrentAppendAck(t *testing.T) {
	opts, _ := testOptions(t, 14)
	opts.Uplinks = []string{"mqtt", "p2p"}
	opts.MaxBytes = 40 << 10
	s := openStore(t, dbPath(t), opts)
	const batches = 40
	done := make(chan struct{})
	errc := make(chan error, 4)
	go func() {
		defer close(done)
		for range batches {
			if _, err := s.Append(entries(t, s.Head().Seq, 50, 100), s.PendingGaps()); err != nil {
				errc <- err
				return
			}
		}
	}()
	for _, name := range opts.Uplinks {
		go func() {
			q := s.Queue(name)
			for {
				changed := q.Changed()
				acked, err := q.Acked()
				if err != nil {
					errc <- err
					return
				}
				recs, err := q.Pending(acked, 64)
				if err != nil {
					errc <- err
					return
				}
				if len(recs) > 0 {
					if err := q.Ack(recs[len(recs)-1].Seq); err != nil {
						errc <- err
						return
					}
					continue
				}
				select {
				case <-changed:
				case <-done:
					if s.Head().Seq == acked {
						errc <- nil
						return
					}
				}
			}
		}()
	}
	go func() {
		for {
			select {
			case <-done:
				errc <- nil
				return
			default:
			}
			if _, err := s.Stats(); err != nil {
				errc <- err
				return
			}
			if err := s.Check(); err != nil {
				errc <- err
				return
			}
		}
	}()
	for range 3 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if got := storedSeqs(t, s); len(got) != 0 {
		t.Errorf("%d records left after both uplinks acked the head", len(got))
	}
	if s.Head().Seq != batches*50 {
		t.Errorf("head = %d, want %d", s.Head().Seq, batches*50)
	}
}

// TestEvictHeadroom: with headroom, one eviction frees enough for many
// later appends, so a full outbox does not evict on every batch.
func TestEvictHeadroom(t *testing.T) {
	opts, _ := testOptions(t, 9)
	opts.MaxBytes = 1000 // ten 100-byte records
	opts.EvictHeadroom = 300
	s := openStore(t, dbPath(t), opts)
	var evictions int
	for i := 0; i < 20; i++ {
		ev, err := s.Append(entries(t, s.Head().Seq, 1, 100), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(ev) > 0 {
			evictions++
			if got := ev[0].To - ev[0].From + 1; got != 4 {
				t.Fatalf("append %d evicted %d records, want the 1 over the quota plus 3 of headroom", i, got)
			}
		}
	}
	// 10 fill the quota; then each eviction frees 4 slots: appends 11, 15, 19 evict.
	if evictions != 3 {
		t.Fatalf("%d evictions in 20 appends, want 3", evictions)
	}
	st, _ := s.Stats()
	if st.Bytes > opts.MaxBytes {
		t.Fatalf("%d bytes stored, over the quota", st.Bytes)
	}
}
