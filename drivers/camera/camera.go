// Package camera attests the files a dashcam or camera writes: it watches the
// directory where the camera software puts its segments or frames and emits
// one camera.file observation (name, size, mtime, SHA-256) per complete file.
//
// A file is complete when inotify reports it closed after writing
// (IN_CLOSE_WRITE) or renamed into the directory (IN_MOVED_TO). A periodic
// rescan backs this up for filesystems without inotify (some FUSE and SMB
// mounts) and for events lost to a queue overflow: a file it finds whose size
// and mtime have not changed for Settle counts as complete. A file inotify
// saw created stays "being written" until it is closed (or unchanged for ten
// minutes), so a paused writer does not get a half file attested.
//
// The user's files are only ever opened read-only and never modified, moved
// or deleted. Only the directory's top level is watched; names starting with
// "." are ignored, as that is where careful writers put their temp files.
//
// Delivery is at least once. What has been attested is remembered in a small
// state file in StateDir, and a file is recorded there only once its record
// is durable (the observation's Durable callback, after the pipeline's
// commit), never when emit returns nil, which only means queued. A crash or
// power cut before the commit attests that file again after the restart; a
// file is never silently skipped. The state forgets files that are no longer
// in the directory, so it stays as small as the listing.
//
// Concurrency: Run must be called at most once at a time per Dev; it uses one
// goroutine of its own (the inotify reader), which it waits for before
// returning. Durable callbacks arrive on the pipeline's goroutine, also after
// Run has returned, and are applied under a lock. Name, Stats and Probe are
// safe to call concurrently with Run.
package camera

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
)

// Opts configures a Dev. The zero value of each field means its default,
// except Dir and StateDir, which are required.
type Opts struct {
	// Dir is the directory the camera software writes into.
	Dir string
	// Pattern selects files by base name, as path/filepath.Match does, e.g.
	// "*.mp4".
	Pattern string
	// Settle is how long a file must keep the same size and mtime before the
	// rescan treats it as complete. Make it longer than the longest pause of
	// the camera's writer on filesystems without inotify.
	Settle time.Duration
	// Rescan is the period of the fallback directory scan.
	Rescan time.Duration
	// StateDir holds the state file (camera-<name>.json).
	StateDir string
	// Logger receives the driver's logs; a "component" attribute is added.
	Logger *slog.Logger
	// Now is the clock used for settling and for Stats.
	Now func() time.Time
}

// DefaultOpts returns the options used for any field left zero.
func DefaultOpts() Opts {
	return Opts{
		Pattern:  "*",
		Settle:   2 * time.Second,
		Rescan:   30 * time.Second,
		StateDir: "/var/lib/edge-agent",
		Logger:   slog.New(slog.DiscardHandler),
		Now:      time.Now,
	}
}

// Stats is what the driver has done since it was created.
type Stats struct {
	FilesAttested uint64    // files whose record is durable
	BytesHashed   uint64    // bytes read to compute them
	LastFile      string    // name of the last file attested
	LastAttested  time.Time // when its record became durable
	Errors        uint64    // files that could not be read, state writes that failed
	LastError     string
	// Skipped counts names in the directory that match the pattern but are
	// not attested because they are not the camera's files: FIFOs, devices,
	// sockets, symlinks, and hard links to a file that also lives outside
	// the directory. Each name (and version) counts once.
	Skipped     uint64
	LastSkipped string // "name: why"
}

// Dev is one watched camera directory.
type Dev struct {
	name      string
	opts      Opts
	statePath string
	log       *slog.Logger
	// open opens a user's file; always read-only. Tests replace it to make a
	// file unreadable when they run as root.
	open func(path string) (*os.File, error)
	// inotify is false in tests of the rescan-only fallback.
	inotify bool

	mu    sync.Mutex
	stats Stats
}

var (
	_ drivers.Driver       = (*Dev)(nil)
	_ drivers.Prober       = (*Dev)(nil)
	_ drivers.DeviceLister = (*Dev)(nil)
)

// New returns a Dev for o.Dir. It does not touch the filesystem; Probe says
// whether the directory is usable.
func New(name string, o *Opts) (*Dev, error) {
	def := DefaultOpts()
	opts := drivers.OptsOf(o)
	drivers.SetDefault(&opts.Pattern, def.Pattern)
	drivers.SetDefault(&opts.Settle, def.Settle)
	drivers.SetDefault(&opts.Rescan, def.Rescan)
	drivers.SetDefault(&opts.Logger, def.Logger)
	if opts.Now == nil {
		opts.Now = def.Now
	}
	switch {
	case opts.Dir == "":
		return nil, fmt.Errorf("camera: new %q: dir: set the directory the camera writes to: %w", name, ErrMissingOption)
	case opts.StateDir == "":
		return nil, fmt.Errorf("camera: new %q: state_dir: %w", name, ErrMissingOption)
	case strings.ContainsRune(opts.Pattern, '/'):
		return nil, fmt.Errorf("camera: new %q: pattern %q: matches base names only, without '/': %w", name, opts.Pattern, ErrInvalidOption)
	case opts.Settle < 0 || opts.Rescan < 0:
		return nil, fmt.Errorf("camera: new %q: settle %v and rescan %v must be positive: %w", name, opts.Settle, opts.Rescan, ErrInvalidOption)
	}
	if _, err := filepath.Match(opts.Pattern, ""); err != nil {
		return nil, fmt.Errorf("camera: new %q: pattern %q: %w (%w)", name, opts.Pattern, ErrInvalidOption, err)
	}
	return &Dev{
		name:      name,
		opts:      opts,
		statePath: filepath.Join(opts.StateDir, "camera-"+safeName(name)+".json"),
		log:       opts.Logger.With("component", "camera", "driver", name),
		open:      openReadOnly,
		inotify:   true,
	}, nil
}

// safeName keeps a driver name usable as part of a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

// openReadOnly opens without following a symlink: a link placed in the
// directory must not make the agent attest (or read) a file elsewhere. It
// never blocks: a FIFO would otherwise wait for a writer forever (and the
// driver with it, deaf to SIGTERM), and a tty must not become ours.
func openReadOnly(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
}

// kindOf names what a non-regular directory entry is, for Stats and logs.
func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device node"
	case m.IsDir():
		return "a directory"
	}
	return "not a regular file"
}

// Name implements drivers.Driver.
func (d *Dev) Name() string { return d.name }

// Devices implements drivers.DeviceLister: the camera's directory.
func (d *Dev) Devices() []drivers.Device {
	return []drivers.Device{{Kind: drivers.DeviceDir, Path: d.opts.Dir, What: "camera directory"}}
}

// Stats returns a snapshot of the counters.
func (d *Dev) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Probe implements drivers.Prober: the directory must exist (else Skipped)
// and be listable (else Failed), and the state directory, if it exists,
// must be writable.
func (d *Dev) Probe(ctx context.Context) (drivers.Probe, error) {
	if err := ctx.Err(); err != nil {
		return drivers.Failed, fmt.Errorf("camera: probe %q: %w", d.name, err)
	}
	if err := checkDir(d.opts.Dir); err != nil {
		return drivers.ProbeResult(err, ErrNoDir), err
	}
	if err := checkStateDir(d.opts.StateDir); err != nil {
		return drivers.Failed, err
	}
	return drivers.Loaded, nil
}

func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("camera: stat %s: check the camera software's output directory and that its storage is mounted: %w", dir, ErrNoDir)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("camera: stat %s: give user edge-agent read and execute access: %w (%w)", dir, ErrPermission, err)
	case err != nil:
		return fmt.Errorf("camera: stat %s: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("camera: %s: %w", dir, ErrNotDir)
	}
	f, err := os.Open(dir)
	if err == nil {
		_, err = f.ReadDir(1)
		f.Close()
		if errors.Is(err, io.EOF) {
			err = nil
		}
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("camera: list %s: give user edge-agent read and execute access: %w (%w)", dir, ErrPermission, err)
	}
	if err != nil {
		return fmt.Errorf("camera: list %s: %w", dir, err)
	}
	return nil
}

func checkStateDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // Run creates it
	}
	if err != nil {
		return fmt.Errorf("camera: stat state dir %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("camera: state dir %s: %w", dir, ErrNotDir)
	}
	if err := accessWrite(dir); err != nil {
		return fmt.Errorf("camera: state dir %s: make it writable by user edge-agent: %w (%w)", dir, ErrPermission, err)
	}
	return nil
}

// event is one directory change, translated from inotify.
type event struct {
	kind eventKind
	name string
	err  error // for evWatchLost from a read error
}

type eventKind int

const (
	evClosed    eventKind = iota + 1 // closed after writing: complete
	evMovedIn                        // renamed into the directory: complete
	evCreated                        // created: a writer has it open
	evGone                           // deleted or renamed away
	evOverflow                       // events were lost: rescan
	evWatchLost                      // the directory went away or the reader failed
)

// staleWriter is how long a file inotify saw created, and never closed, must
// stay unchanged before the rescan takes it as complete.
const staleWriter = 10 * time.Minute

// pending is a file seen by a scan that is not known complete yet.
type pending struct {
	key   fileKey
	since time.Time // when it was first seen with this key
}

// watcher is the state of one Run.
type watcher struct {
	d     *Dev
	emit  drivers.Emit
	files map[string]stateEntry // attested versions, durable, persisted
	dirty bool                  // files changed since the last save
	// inflight holds the versions emitted whose records are not durable yet:
	// not emitted again, not in the state file until their ack.
	inflight map[string]fileKey
	pending  map[string]pending
	writing  map[string]bool    // created, not yet closed (inotify only)
	failed   map[string]fileKey // version that last failed to read, logged once
	skipped  map[string]fileKey // version skipped as not the camera's, counted once
	// listFailed is set while the directory cannot be listed.
	listFailed bool
	buf        []byte

	// ackMu guards acks and stopped, and after Run has returned (stopped)
	// also files, inflight and dirty, which late acks then update.
	ackMu    sync.Mutex
	acks     []ack
	stopped  bool
	ackReady chan struct{} // cap 1: acks has entries
}

// ack says that the record of one emitted version is durable.
type ack struct {
	name string
	key  fileKey
	sum  []byte
}

// Run implements drivers.Driver. It returns an error only if the state
// directory cannot be created. Files it cannot read are logged, counted in
// Stats and retried at the next rescan; a directory that is missing or goes
// away (an unmounted card) is waited for.
func (d *Dev) Run(ctx context.Context, emit drivers.Emit) error {
	if err := os.MkdirAll(d.opts.StateDir, 0o750); err != nil {
		return fmt.Errorf("camera: create state dir: %w", err)
	}
	files, err := loadState(d.statePath)
	if err != nil {
		// Starting empty re-attests what is in the directory: duplicates,
		// which receivers handle, rather than files never attested.
		d.log.Warn("state unreadable; files in the directory will be attested again", "err", err)
	}
	w := &watcher{
		d: d, emit: emit, files: files,
		inflight: map[string]fileKey{},
		ackReady: make(chan struct{}, 1),
		pending:  map[string]pending{},
		writing:  map[string]bool{},
		failed:   map[string]fileKey{},
		skipped:  map[string]fileKey{},
		buf:      make([]byte, hashBufSize),
	}
	err = w.run(ctx)
	// From here on acks are applied as they come: the pipeline commits what
	// it holds after the drivers have stopped.
	w.ackMu.Lock()
	w.applyAcks()
	w.stopped = true
	if w.dirty {
		w.save()
	}
	w.ackMu.Unlock()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (w *watcher) run(ctx context.Context) error {
	d := w.d
	events := make(chan event, 64)
	var stopWatch func() error
	defer func() {
		if stopWatch != nil {
			stopWatch()
		}
	}()
	// watch (re)starts inotify; the directory may come and go with a mount.
	watchWarned := false
	watch := func() {
		if !d.inotify || stopWatch != nil {
			return
		}
		var err error
		if stopWatch, err = watchDir(d.opts.Dir, events); err != nil {
			if !watchWarned {
				d.log.Warn("no inotify watch; finding files by rescan only", "err", err, "rescan", d.opts.Rescan, "settle", d.opts.Settle)
				watchWarned = true
			}
			return
		}
		watchWarned = false
	}
	watch()
	// Scan once at start: files written while the agent was down.
	if err := w.scan(ctx); err != nil {
		return err
	}
	rescan := time.NewTicker(d.opts.Rescan)
	defer rescan.Stop()
	settle := time.NewTimer(d.opts.Settle)
	defer settle.Stop()
	settleArmed := true
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-events:
			if ev.kind == evWatchLost {
				d.log.Warn("directory watch ended; will retry at next rescan", "dir", d.opts.Dir, "err", ev.err)
				if stopWatch != nil {
					stopWatch()
					stopWatch = nil
				}
				continue
			}
			if err := w.handle(ctx, ev); err != nil {
				return err
			}
		case <-rescan.C:
			watch()
			if err := w.scan(ctx); err != nil {
				return err
			}
		case <-settle.C:
			settleArmed = false
			if err := w.settlePending(ctx); err != nil {
				return err
			}
		case <-w.ackReady:
			w.ackMu.Lock()
			w.applyAcks()
			w.ackMu.Unlock()
		}
		if w.dirty {
			w.save()
		}
		// Arm only when idle, so a stream of events cannot keep pushing
		// the settle check back.
		if len(w.pending) > 0 && !settleArmed {
			settle.Reset(d.opts.Settle)
			settleArmed = true
		}
	}
}

func (w *watcher) match(name string) bool {
	if name == "" || strings.HasPrefix(name, ".") {
		return false
	}
	ok, _ := filepath.Match(w.d.opts.Pattern, name) // validated in New
	return ok
}

func (w *watcher) handle(ctx context.Context, ev event) error {
	if ev.kind == evOverflow {
		w.d.log.Warn("inotify queue overflowed; rescanning")
		return w.scan(ctx)
	}
	if !w.match(ev.name) {
		return nil
	}
	switch ev.kind {
	case evCreated:
		w.writing[ev.name] = true
		delete(w.pending, ev.name)
	case evClosed, evMovedIn:
		delete(w.writing, ev.name)
		delete(w.pending, ev.name)
		return w.attest(ctx, ev.name)
	case evGone:
		w.forget(ev.name)
	}
	return nil
}

func (w *watcher) forget(name string) {
	delete(w.writing, name)
	delete(w.pending, name)
	delete(w.failed, name)
	delete(w.skipped, name)
	delete(w.inflight, name) // a late ack finds no match and is ignored
	if _, ok := w.files[name]; ok {
		delete(w.files, name)
		w.dirty = true
	}
}

// scan lists the directory: new versions start settling, attested files
// that are gone are forgotten.
func (w *watcher) scan(ctx context.Context) error {
	entries, err := os.ReadDir(w.d.opts.Dir)
	if err != nil {
		// Keep the state: the directory may be a mount that comes back.
		// Log the change, not every rescan.
		w.d.noteError(fmt.Errorf("camera: list %s: %w", w.d.opts.Dir, err), false)
		if !w.listFailed {
			w.d.log.Warn("cannot list the directory; will keep trying", "dir", w.d.opts.Dir, "err", err)
		}
		w.listFailed = true
		return nil
	}
	if w.listFailed {
		w.d.log.Info("directory readable again", "dir", w.d.opts.Dir)
		w.listFailed = false
	}
	present := make(map[string]bool, len(entries))
	for _, e := range entries {
		name := e.Name()
		if !w.match(name) {
			continue
		}
		present[name] = true
		if !e.Type().IsRegular() {
			w.skip(name, fileKey{}, kindOf(e.Type()))
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed since the listing
		}
		k := keyOf(fi)
		if w.attested(name, k) {
			continue
		}
		if p, ok := w.pending[name]; !ok || p.key != k {
			w.pending[name] = pending{key: k, since: w.d.opts.Now()}
		}
	}
	for name := range w.files {
		if !present[name] {
			w.forget(name)
		}
	}
	for name := range w.inflight {
		if !present[name] {
			w.forget(name)
		}
	}
	for name := range w.writing {
		if !present[name] {
			delete(w.writing, name)
		}
	}
	for name := range w.skipped {
		if !present[name] {
			delete(w.skipped, name)
		}
	}
	return w.settlePending(ctx)
}

// settlePending attests the pending files that have kept their size and
// mtime for Settle.
func (w *watcher) settlePending(ctx context.Context) error {
	now := w.d.opts.Now()
	for name, p := range w.pending {
		fi, err := os.Lstat(filepath.Join(w.d.opts.Dir, name))
		if err != nil || !fi.Mode().IsRegular() {
			delete(w.pending, name)
			continue
		}
		k := keyOf(fi)
		if k != p.key {
			w.pending[name] = pending{key: k, since: now}
			continue
		}
		settle := w.d.opts.Settle
		if w.writing[name] {
			// Created and not closed: wait for IN_CLOSE_WRITE, but not
			// forever, as a hard link arrives by IN_CREATE alone.
			settle = max(settle, staleWriter)
		}
		if now.Sub(p.since) < settle {
			continue
		}
		delete(w.pending, name)
		if err := w.attest(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// attested reports whether this version is attested or on its way.
func (w *watcher) attested(name string, k fileKey) bool {
	if f, ok := w.inflight[name]; ok && f == k {
		return true
	}
	e, ok := w.files[name]
	return ok && e.fileKey == k
}

// durable is the Observation.Durable callback of one emitted version. It
// runs on the pipeline's goroutine and must not block: while Run runs it
// hands the ack to the run loop; once Run has returned it applies the ack
// and saves the state itself.
func (w *watcher) durable(a ack) {
	w.ackMu.Lock()
	defer w.ackMu.Unlock()
	w.acks = append(w.acks, a)
	if w.stopped {
		w.applyAcks()
		if w.dirty {
			w.save()
		}
		return
	}
	select {
	case w.ackReady <- struct{}{}:
	default:
	}
}

// applyAcks moves the acked versions from inflight to the state: only now
// is a file recorded as attested (see the package comment). An ack for a
// version that is gone or was replaced since is dropped. w.ackMu is held.
func (w *watcher) applyAcks() {
	d := w.d
	for _, a := range w.acks {
		if k, ok := w.inflight[a.name]; !ok || k != a.key {
			continue
		}
		delete(w.inflight, a.name)
		w.files[a.name] = newEntry(a.key, a.sum)
		w.dirty = true
		d.mu.Lock()
		d.stats.FilesAttested++
		d.stats.LastFile = a.name
		d.stats.LastAttested = d.opts.Now()
		d.mu.Unlock()
		d.log.Debug("attested", "file", a.name, "size", a.key.Size, "sha256", fmt.Sprintf("%x", a.sum))
	}
	w.acks = w.acks[:0]
}

func keyOf(fi fs.FileInfo) fileKey {
	return fileKey{Size: fi.Size(), MTime: fi.ModTime().UnixNano()}
}

// attest hashes one file and emits it unless this version was attested
// already. It returns an error only when emit fails (the daemon is stopping);
// an unreadable file is logged and left for the next rescan.
func (w *watcher) attest(ctx context.Context, name string) error {
	d := w.d
	f, err := d.open(filepath.Join(d.opts.Dir, name))
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil // gone before we got to it
		case errors.Is(err, syscall.ELOOP):
			w.skip(name, fileKey{}, kindOf(fs.ModeSymlink))
		default:
			w.readFailed(name, fileKey{}, err)
		}
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		w.readFailed(name, fileKey{}, err)
		return nil
	}
	if !fi.Mode().IsRegular() {
		w.skip(name, fileKey{}, kindOf(fi.Mode()))
		return nil
	}
	k := keyOf(fi)
	if w.attested(name, k) {
		return nil
	}
	if !w.linksInside(fi) {
		// A hard link to a file elsewhere (/etc/shadow): the camera did
		// not write it, and its hash must not be signed as its output.
		w.skip(name, k, "a hard link to a file outside the directory")
		return nil
	}
	sum, n, err := hashFile(ctx, f, w.buf)
	d.addHashed(n)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.readFailed(name, k, err)
		return nil
	}
	// A file that changed while we read it is still being written to.
	if fi2, err := f.Stat(); err != nil || keyOf(fi2) != k || n != k.Size {
		if err == nil {
			w.pending[name] = pending{key: keyOf(fi2), since: d.opts.Now()}
		}
		return nil
	}
	a := ack{name: name, key: k, sum: sum}
	obs := drivers.Observation{
		Kind:    drivers.KindCameraFile,
		Source:  d.name,
		Time:    fi.ModTime(), // capture time; the pipeline stamps location
		Data:    drivers.CameraFile{Name: name, Size: k.Size, SHA256: sum, MTimeUnixNano: k.MTime},
		Durable: func() { w.durable(a) },
	}
	// In flight before emit: the ack may come before emit returns.
	w.inflight[name] = k
	if err := w.emit(ctx, obs); err != nil {
		delete(w.inflight, name)
		return fmt.Errorf("camera: emit %s: %w", name, err)
	}
	// Queued, not durable: the state changes only in applyAcks.
	delete(w.failed, name)
	return nil
}

// skip counts and logs, once per version of a name, an entry that is not
// the camera's file.
func (w *watcher) skip(name string, k fileKey, why string) {
	delete(w.pending, name)
	if prev, seen := w.skipped[name]; seen && prev == k {
		return
	}
	w.skipped[name] = k
	d := w.d
	d.mu.Lock()
	d.stats.Skipped++
	d.stats.LastSkipped = name + ": " + why
	d.mu.Unlock()
	d.log.Warn("not attesting: it is not a file the camera wrote here", "file", name, "is", why)
}

// linksInside reports whether every name of a regular file is in the
// watched directory: true for a file with one link, and for a writer that
// links its finished temp file into place; false for a hard link to a file
// that also lives elsewhere.
func (w *watcher) linksInside(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Nlink <= 1 {
		return true
	}
	entries, err := os.ReadDir(w.d.opts.Dir)
	if err != nil {
		return false
	}
	var here uint64
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if info, err := e.Info(); err == nil {
			if s, ok := info.Sys().(*syscall.Stat_t); ok && s.Ino == st.Ino && s.Dev == st.Dev {
				here++
			}
		}
	}
	return here >= uint64(st.Nlink)
}

// readFailed counts every failure but logs each version of a file once, as
// the rescan would otherwise repeat the line every period.
func (w *watcher) readFailed(name string, k fileKey, err error) {
	prev, seen := w.failed[name]
	w.failed[name] = k
	msg := fmt.Errorf("camera: read %s: %w", name, err)
	if errors.Is(err, fs.ErrPermission) {
		msg = fmt.Errorf("camera: read %s: give user edge-agent read access: %w", name, err)
	}
	w.d.noteError(msg, !seen || prev != k)
}

func (d *Dev) noteError(err error, logIt bool) {
	d.mu.Lock()
	d.stats.Errors++
	d.stats.LastError = err.Error()
	d.mu.Unlock()
	if logIt {
		d.log.Warn("skipping file", "err", err)
	}
}

func (d *Dev) addHashed(n int64) {
	d.mu.Lock()
	d.stats.BytesHashed += uint64(n)
	d.mu.Unlock()
}

func (w *watcher) save() {
	if err := saveState(w.d.statePath, w.d.opts.Dir, w.files); err != nil {
		// Keep dirty: the next change retries. Until then a restart
		// re-attests, which is a duplicate, not a loss.
		w.d.noteError(err, true)
		return
	}
	w.dirty = false
}

// hashBufSize is the read size: large enough that SD card reads are
// sequential, small enough for a 512 MB board.
const hashBufSize = 1 << 20

// hashFile streams r through SHA-256 with buf, so memory use does not
// depend on the file's size. It checks ctx between reads, since a 2 GB file
// takes tens of seconds on a Pi.
func hashFile(ctx context.Context, r io.Reader, buf []byte) ([]byte, int64, error) {
	h := sha256.New()
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return nil, n, err
		}
		m, err := r.Read(buf)
		h.Write(buf[:m])
		n += int64(m)
		if errors.Is(err, io.EOF) {
			return h.Sum(nil), n, nil
		}
		if err != nil {
			return nil, n, err
		}
	}
}
