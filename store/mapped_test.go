package store_test

import (
	"bufio"
	"github.com/edge-agent/edge-agent/store"
	"os"
	"strconv"
	"strings"
	"testing"
)

// rssFileKiB is this process's resident file-backed memory.
func rssFileKiB(tb testing.TB) int64 {
	tb.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "RssFile:"); ok {
			n, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Fatal("no RssFile in /proc/self/status")
	return 0
}

// TestDrainDoesNotKeepPagesResident: draining a large backlog must not leave
// the whole database resident in the process (it is page cache, but top,
// RSS limits and cgroups count it).
func TestDrainDoesNotKeepPagesResident(t *testing.T) {
	opts, _ := testOptions(t, 11)
	opts.Uplinks = []string{"mqtt"}
	s := openStore(t, dbPath(t), opts)
	const total = 48 << 20
	for s.Head().Seq*1024 < total {
		if _, err := s.Append(entries(t, s.Head().Seq, 1024, 1024), nil); err != nil {
			t.Fatal(err)
		}
	}
	before := rssFileKiB(t)
	q := s.Queue("mqtt")
	var after uint64
	for {
		recs, err := q.Pending(after, 1024)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		after = recs[len(recs)-1].Seq
	}
	grew := (rssFileKiB(t) - before) << 10
	t.Logf("drained %d MiB; file-backed RSS grew %d KiB", total>>20, grew>>10)
	if grew > total/3 {
		t.Fatalf("file-backed RSS grew by %d MiB while draining %d MiB: the mapped pages are kept", grew>>20, total>>20)
	}
}

func statusKiB(tb testing.TB, field string) int64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// TestOpenCheckDoesNotKeepPagesResident: the consistency check at open walks
// every page of the file; on a large outbox that must not show up as a
// resident-memory peak of the file's size.
func TestOpenCheckDoesNotKeepPagesResident(t *testing.T) {
	opts, _ := testOptions(t, 12)
	path := dbPath(t)
	s, err := store.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Large against the noise of a loaded machine and the race detector's
	// own memory (peaks of ~24 MiB seen); without the drops it is ~1.3× total.
	const total = 96 << 20
	for s.Head().Seq*1024 < total {
		if _, err := s.Append(entries(t, s.Head().Seq, 1024, 1024), nil); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// Writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset the peak RSS: %v", err)
	}
	before := statusKiB(t, "VmRSS")
	s, err = store.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	grew := (statusKiB(t, "VmHWM") - before) << 10
	t.Logf("opening a %d MiB outbox raised peak RSS by %d KiB", total>>20, grew>>10)
	if grew > total/2 {
		t.Fatalf("opening a %d MiB outbox raised peak RSS by %d MiB: the check keeps the file resident", total>>20, grew>>20)
	}
}
