package camera

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
)

// quiet is how long a test waits to be sure nothing more is emitted: several
// rescan and settle periods of the fast options below.
const quiet = 300 * time.Millisecond

// fastOpts settles and rescans quickly so tests run in milliseconds.
func fastOpts(tb testing.TB, dir, stateDir string) *Opts {
	tb.Helper()
	return &Opts{Dir: dir, StateDir: stateDir, Settle: 30 * time.Millisecond, Rescan: 20 * time.Millisecond}
}

// running is a Dev under Run, with its emitted observations on obs.
type running struct {
	d      *Dev
	obs    chan drivers.Observation
	cancel context.CancelFunc
	done   chan error
}

func start(tb testing.TB, d *Dev) *running {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, obs: make(chan drivers.Observation, 100), cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- d.Run(ctx, func(ctx context.Context, o drivers.Observation) error {
			select {
			case r.obs <- o:
				// A pipeline that commits at once.
				if o.Durable != nil {
					o.Durable()
				}
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	tb.Cleanup(func() { r.stop(tb) })
	// Let the start-up scan and the inotify watch get going, so a test's
	// first write is seen as a live event, not found by the scan.
	time.Sleep(20 * time.Millisecond)
	return r
}

func (r *running) stop(tb testing.TB) {
	tb.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			tb.Errorf("Run returned %v, want nil on cancel", err)
		}
	case <-time.After(5 * time.Second):
		tb.Fatal("Run did not return after cancel")
	}
}

func (r *running) next(tb testing.TB) drivers.CameraFile {
	tb.Helper()
	select {
	case o := <-r.obs:
		if o.Kind != drivers.KindCameraFile || o.Source != r.d.Name() {
			tb.Errorf("observation %q from %q, want %q from %q", o.Kind, o.Source, drivers.KindCameraFile, r.d.Name())
		}
		cf, ok := o.Data.(drivers.CameraFile)
		if !ok {
			tb.Fatalf("Data is %T, want drivers.CameraFile", o.Data)
		}
		if o.Time.UnixNano() != cf.MTimeUnixNano {
			tb.Errorf("Observation.Time = %v, want the file's mtime %v", o.Time, time.Unix(0, cf.MTimeUnixNano))
		}
		return cf
	case <-time.After(5 * time.Second):
		tb.Fatal("no observation within 5s")
	}
	return drivers.CameraFile{}
}

func (r *running) none(tb testing.TB) {
	tb.Helper()
	select {
	case o := <-r.obs:
		tb.Errorf("unexpected observation %+v", o.Data)
	case <-time.After(quiet):
	}
}

// check compares an observation with the file on disk, hashed here.
func check(tb testing.TB, dir string, cf drivers.CameraFile, name string) {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		tb.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(b)
	want := drivers.CameraFile{Name: name, Size: int64(len(b)), SHA256: sum[:], MTimeUnixNano: fi.ModTime().UnixNano()}
	if cf.Name != want.Name || cf.Size != want.Size || !bytes.Equal(cf.SHA256, want.SHA256) || cf.MTimeUnixNano != want.MTimeUnixNano {
		tb.Errorf("got %s size %d sha %x mtime %d; want %s size %d sha %x mtime %d",
			cf.Name, cf.Size, cf.SHA256, cf.MTimeUnixNano, want.Name, want.Size, want.SHA256, want.MTimeUnixNano)
	}
}

func newDev(tb testing.TB, o *Opts) *Dev {
	tb.Helper()
	d, err := New("cam0", o)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func writeFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatal(err)
	}
}

func TestCompleteFilesAreAttested(t *testing.T) {
	for _, inotify := range []bool{true, false} {
		t.Run(fmt.Sprintf("inotify=%v", inotify), func(t *testing.T) {
			tests := []struct {
				name  string
				write func(tb testing.TB, dir, tmp string) string
			}{
				{"write then close", func(tb testing.TB, dir, _ string) string {
					writeFile(tb, filepath.Join(dir, "seg1.mp4"), []byte("frame data 1"))
					return "seg1.mp4"
				}},
				{"rename into place", func(tb testing.TB, dir, tmp string) string {
					src := filepath.Join(tmp, "seg2.part")
					writeFile(tb, src, bytes.Repeat([]byte("x"), 100_000))
					if err := os.Rename(src, filepath.Join(dir, "seg2.mp4")); err != nil {
						tb.Fatal(err)
					}
					return "seg2.mp4"
				}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					dir, tmp := t.TempDir(), t.TempDir()
					o := fastOpts(t, dir, t.TempDir())
					if inotify {
						o.Settle = time.Hour // only the event can make it complete
					}
					d := newDev(t, o)
					d.inotify = inotify
					r := start(t, d)
					name := tt.write(t, dir, tmp)
					check(t, dir, r.next(t), name)
					r.none(t)
					if s := d.Stats(); s.FilesAttested != 1 || s.LastFile != name || s.Errors != 0 {
						t.Errorf("Stats() = %+v", s)
					}
				})
			}
		})
	}
}

func TestPartialFileWaitsForClose(t *testing.T) {
	dir := t.TempDir()
	o := fastOpts(t, dir, t.TempDir())
	// Settle is short: the rescan would take the paused file as complete,
	// but inotify saw it created and not yet closed.
	d := newDev(t, o)
	r := start(t, d)

	f, err := os.Create(filepath.Join(dir, "seg.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("first half ")); err != nil {
		t.Fatal(err)
	}
	r.none(t)
	if _, err := f.Write([]byte("second half")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cf := r.next(t)
	check(t, dir, cf, "seg.mp4")
	if cf.Size != int64(len("first half second half")) {
		t.Errorf("attested %d bytes, want the whole file", cf.Size)
	}
}

// fakeClock is a settable Now for the settle logic.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestHardLinkSettlesAfterStaleWriterTime(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	o := fastOpts(t, dir, t.TempDir())
	o.Now = clock.now
	r := start(t, newDev(t, o))
	// The writer links its finished temp file into place: both names are
	// in the directory, so the file belongs there.
	src := filepath.Join(dir, ".seg.tmp")
	writeFile(t, src, []byte("linked"))
	// A link arrives by IN_CREATE with no IN_CLOSE_WRITE to follow.
	if err := os.Link(src, filepath.Join(dir, "seg.mp4")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(quiet) // scans see it and start its clock
	clock.add(time.Minute)
	r.none(t)
	clock.add(staleWriter)
	check(t, dir, r.next(t), "seg.mp4")
}

func TestRestart(t *testing.T) {
	dir, stateDir := t.TempDir(), t.TempDir()
	d := newDev(t, fastOpts(t, dir, stateDir))
	r := start(t, d)
	writeFile(t, filepath.Join(dir, "a.mp4"), []byte("a"))
	writeFile(t, filepath.Join(dir, "b.mp4"), []byte("b"))
	writeFile(t, filepath.Join(dir, "d.mp4"), []byte("d"))
	seen := map[string]bool{r.next(t).Name: true, r.next(t).Name: true, r.next(t).Name: true}
	if !seen["a.mp4"] || !seen["b.mp4"] || !seen["d.mp4"] {
		t.Fatalf("first run attested %v, want a.mp4, b.mp4 and d.mp4", seen)
	}
	r.stop(t)

	// While down: a new file, a changed file, a deleted file.
	writeFile(t, filepath.Join(dir, "c.mp4"), []byte("c"))
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "b.mp4"), past, past); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "a.mp4")); err != nil {
		t.Fatal(err)
	}

	d2 := newDev(t, fastOpts(t, dir, stateDir))
	r2 := start(t, d2)
	got := map[string]drivers.CameraFile{}
	for range 2 {
		cf := r2.next(t)
		got[cf.Name] = cf
	}
	r2.none(t) // d.mp4 is unchanged: not attested twice
	if _, ok := got["c.mp4"]; !ok {
		t.Errorf("file written while down not attested; got %v", got)
	}
	if cf, ok := got["b.mp4"]; !ok || cf.MTimeUnixNano != past.UnixNano() {
		t.Errorf("changed file not attested as a new version; got %v", got)
	}
	r2.stop(t)

	// The state forgets a.mp4, which is gone, and keeps the rest.
	files, err := loadState(filepath.Join(stateDir, "camera-cam0.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 || files["b.mp4"].MTime != past.UnixNano() || files["c.mp4"].Size != 1 || files["d.mp4"].Size != 1 {
		t.Errorf("state = %+v, want b.mp4 (new mtime), c.mp4 and d.mp4 only", files)
	}
	matches, _ := filepath.Glob(filepath.Join(stateDir, "*.tmp*"))
	if len(matches) != 0 {
		t.Errorf("temp state files left behind: %v", matches)
	}
}

func TestDirectoryAppearsLater(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "card")
	logs := &logRecorder{}
	o := fastOpts(t, dir, t.TempDir())
	o.Logger = slog.New(logs)
	r := start(t, newDev(t, o))
	time.Sleep(quiet) // many rescans of a missing directory
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "a.mp4"), []byte("a"))
	check(t, dir, r.next(t), "a.mp4")
	if n := logs.count("cannot list the directory; will keep trying"); n != 1 {
		t.Errorf("logged the missing directory %d times, want once", n)
	}
	if n := logs.count("no inotify watch; finding files by rescan only"); n != 1 {
		t.Errorf("logged the missing watch %d times, want once", n)
	}
}

func TestEmitFailureIsNotRecorded(t *testing.T) {
	dir, stateDir := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(dir, "a.mp4"), []byte("a"))
	d := newDev(t, fastOpts(t, dir, stateDir))
	// The daemon stops while the pipeline is full: emit fails.
	ctx, cancel := context.WithCancel(context.Background())
	err := d.Run(ctx, func(ctx context.Context, o drivers.Observation) error {
		cancel()
		return ctx.Err()
	})
	if err != nil {
		t.Fatalf("Run() = %v, want nil on cancel", err)
	}
	r := start(t, newDev(t, fastOpts(t, dir, stateDir)))
	check(t, dir, r.next(t), "a.mp4")
}

func TestPatternFiltering(t *testing.T) {
	dir := t.TempDir()
	o := fastOpts(t, dir, t.TempDir())
	o.Pattern = "*.mp4"
	r := start(t, newDev(t, o))
	writeFile(t, filepath.Join(dir, "x.jpg"), []byte("jpg"))
	writeFile(t, filepath.Join(dir, ".y.mp4"), []byte("hidden temp"))
	if err := os.Mkdir(filepath.Join(dir, "sub.mp4"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "x.jpg"), filepath.Join(dir, "link.mp4")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "z.mp4"), []byte("mp4"))
	check(t, dir, r.next(t), "z.mp4")
	r.none(t)
}

func TestUnreadableFileIsLoggedAndSkipped(t *testing.T) {
	dir := t.TempDir()
	logs := &logRecorder{}
	o := fastOpts(t, dir, t.TempDir())
	o.Logger = slog.New(logs)
	d := newDev(t, o)
	bad := filepath.Join(dir, "bad.mp4")
	if os.Geteuid() == 0 {
		// Root reads mode 000 files; refuse the way the kernel would.
		d.open = func(path string) (*os.File, error) {
			if path == bad {
				return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrPermission}
			}
			return openReadOnly(path)
		}
	}
	r := start(t, d)
	writeFile(t, bad, []byte("secret"))
	if err := os.Chmod(bad, 0); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "good.mp4"), []byte("good"))
	check(t, dir, r.next(t), "good.mp4")
	r.none(t) // several rescans retry bad.mp4

	s := d.Stats()
	if s.Errors < 2 || !strings.Contains(s.LastError, "bad.mp4") {
		t.Errorf("Stats() = %+v, want repeated errors naming bad.mp4", s)
	}
	if n := logs.count("skipping file"); n != 1 {
		t.Errorf("logged the unreadable file %d times, want once", n)
	}
}

func TestUserFilesUntouched(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seg.mp4")
	data := bytes.Repeat([]byte("video"), 300_000)
	writeFile(t, path, data)
	old := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, newDev(t, fastOpts(t, dir, t.TempDir())))
	check(t, dir, r.next(t), "seg.mp4")
	r.stop(t)

	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) || after.Mode() != before.Mode() || after.Size() != before.Size() {
		t.Errorf("file changed: mtime %v→%v mode %v→%v size %d→%d", before.ModTime(), after.ModTime(), before.Mode(), after.Mode(), before.Size(), after.Size())
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Error("file contents changed")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("watched directory has %d entries, want only the user's file", len(entries))
	}
}

func TestHashStreamsInConstantMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.mp4")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse, so it costs no disk. The digest of 2 GiB of zeros is from
	// `truncate -s 2G f && sha256sum f`. Under -short the size drops to 256 MiB
	// (its digest from the same commands) to keep quick runs quick.
	size, want := int64(2<<30), "a7c744c13cc101ed66c29f672f92455547889cc586ce6d44fe76ae824958ea51"
	if testing.Short() {
		size, want = 256<<20, "a6d72ac7690f53be6ae46ba88506bd97302a093f7108472bd9efc3cefda06484"
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, hashBufSize)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	sum, n, err := hashFile(context.Background(), f, buf)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%x", sum); n != size || got != want {
		t.Fatalf("hashed %d bytes to %s, want %d bytes to %s", n, got, size, want)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<10 {
		t.Errorf("hashing %d bytes allocated %d bytes, want constant (< 64 KiB)", size, alloc)
	}
	if after.HeapInuse > before.HeapInuse+4<<20 {
		t.Errorf("heap in use grew from %d to %d bytes", before.HeapInuse, after.HeapInuse)
	}
}

func TestProbe(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "file")
	writeFile(t, file, nil)
	tests := []struct {
		name     string
		dir      string
		stateDir string
		want     drivers.Probe
		wantErr  error
	}{
		{"ok", root, t.TempDir(), drivers.Loaded, nil},
		{"state dir created later", root, filepath.Join(t.TempDir(), "new"), drivers.Loaded, nil},
		{"dir missing", filepath.Join(root, "nope"), t.TempDir(), drivers.Skipped, ErrNoDir},
		{"dir is a file", file, t.TempDir(), drivers.Failed, ErrNotDir},
		{"state dir is a file", root, file, drivers.Failed, ErrNotDir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDev(t, &Opts{Dir: tt.dir, StateDir: tt.stateDir})
			got, err := d.Probe(context.Background())
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("Probe() = %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestOpts(t *testing.T) {
	tests := []struct {
		name string
		o    *Opts
		want error
	}{
		{"ok", &Opts{Dir: "/d", StateDir: "/s"}, nil},
		{"nil", nil, ErrMissingOption},
		{"no dir", &Opts{StateDir: "/s"}, ErrMissingOption},
		{"no state dir", &Opts{Dir: "/d"}, ErrMissingOption},
		{"bad pattern", &Opts{Dir: "/d", StateDir: "/s", Pattern: "[x"}, ErrInvalidOption},
		{"pattern with a slash", &Opts{Dir: "/d", StateDir: "/s", Pattern: "*/x.mp4"}, ErrInvalidOption},
		{"negative settle", &Opts{Dir: "/d", StateDir: "/s", Settle: -1}, ErrInvalidOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New("cam0", tt.o)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("New() = %v, want %v", err, tt.want)
			}
		})
	}
}

// logRecorder is a slog.Handler that keeps the messages it is given.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

func (h *logRecorder) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// BenchmarkHashFile measures streaming SHA-256 of a 256 MiB file from the
// page cache. Set CAMERA_BENCH_FILE to hash an existing file instead, e.g.
// the one given to sha256sum for comparison.
func BenchmarkHashFile(b *testing.B) {
	path := os.Getenv("CAMERA_BENCH_FILE")
	if path == "" {
		path = filepath.Join(b.TempDir(), "bench.mp4")
		data := make([]byte, 256<<20)
		for i := range data {
			data[i] = byte(i * 7919 >> 3)
		}
		writeFile(b, path, data)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, hashBufSize)
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for range b.N {
		f, err := openReadOnly(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := hashFile(context.Background(), f, buf); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// Entries that are not the camera's files are skipped, counted once and
// shown; a FIFO must not block the driver (or its stop), and a hard link or
// symlink to a file outside must never be read and signed.
func TestForeignEntriesAreSkipped(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	secret := filepath.Join(outside, "shadow")
	writeFile(t, secret, []byte("root:$6$secret"))
	// Made while the agent was down, so the start-up scan finds it (a live
	// link waits staleWriter, as TestHardLinkSettlesAfterStaleWriterTime shows).
	if err := os.Link(secret, filepath.Join(dir, "hard.mp4")); err != nil {
		t.Fatal(err)
	}
	d := newDev(t, fastOpts(t, dir, t.TempDir()))
	r := start(t, d)

	fifo := filepath.Join(dir, "pipe.mp4")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A writer that opens and closes the FIFO: IN_CLOSE_WRITE, as for a file.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Symlink(secret, filepath.Join(dir, "soft.mp4")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "good.mp4"), []byte("good"))
	check(t, dir, r.next(t), "good.mp4")
	r.none(t) // several rescans: still nothing from the three, and no recount

	s := d.Stats()
	if s.Skipped != 3 || s.LastSkipped == "" {
		t.Errorf("Stats() = %+v, want 3 skipped (FIFO, hard link, symlink) with a reason", s)
	}
	if s.BytesHashed != uint64(len("good")) {
		t.Errorf("hashed %d bytes, want only good.mp4's %d: a foreign file was read", s.BytesHashed, len("good"))
	}
	r.stop(t) // must return promptly: nothing is stuck in an open
}

// Emit's nil means queued: a file is recorded as attested only by its
// Durable callback, which may come after Run has returned (the pipeline
// drains after the drivers stop). A file never acked is attested again.
func TestStateAdvancesOnlyWhenDurable(t *testing.T) {
	dir, stateDir := t.TempDir(), t.TempDir()
	statePath := filepath.Join(stateDir, "camera-cam0.json")
	writeFile(t, filepath.Join(dir, "a.mp4"), []byte("a"))
	writeFile(t, filepath.Join(dir, "b.mp4"), []byte("b"))
	d := newDev(t, fastOpts(t, dir, stateDir))
	held := make(chan drivers.Observation, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- d.Run(ctx, func(ctx context.Context, o drivers.Observation) error {
			held <- o // queued; the commit has not happened
			return nil
		})
	}()
	acks := map[string]func(){}
	for range 2 {
		select {
		case o := <-held:
			if o.Durable == nil {
				t.Fatal("camera.file observation without a Durable callback")
			}
			acks[o.Data.(drivers.CameraFile).Name] = o.Durable
		case <-time.After(5 * time.Second):
			t.Fatal("no observation within 5s")
		}
	}
	time.Sleep(quiet) // rescans: an emitted file is not emitted again while in flight
	select {
	case o := <-held:
		t.Fatalf("emitted %+v again while its record was in flight", o.Data)
	default:
	}
	if s := d.Stats(); s.FilesAttested != 0 {
		t.Errorf("Stats.FilesAttested = %d before any record was durable", s.FilesAttested)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if files, _ := loadState(statePath); len(files) != 0 {
		t.Fatalf("state after a stop with nothing durable = %v, want empty", files)
	}
	acks["a.mp4"]() // the pipeline's drain commits a.mp4 after Run returned
	files, err := loadState(statePath)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files["a.mp4"]; !ok || len(files) != 1 {
		t.Fatalf("state after a.mp4's late ack = %v, want a.mp4 only", files)
	}
	if s := d.Stats(); s.FilesAttested != 1 || s.LastFile != "a.mp4" {
		t.Errorf("Stats after the late ack = %+v", s)
	}

	// b.mp4 was never durable (a crash before the commit): attested again,
	// a.mp4 not.
	r := start(t, newDev(t, fastOpts(t, dir, stateDir)))
	check(t, dir, r.next(t), "b.mp4")
	r.none(t)
}
