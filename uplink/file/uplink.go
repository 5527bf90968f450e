package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/backoff"
	"github.com/edge-agent/edge-agent/store"
	"github.com/edge-agent/edge-agent/uplink"
)

// Defaults for the zero values of Opts.
const (
	DefaultRotateBytes    = 8 << 20
	DefaultRotateInterval = time.Minute // what DefaultOpts sets; 0 in Opts means by size only
	DefaultBatchMax       = 1024
)

// Opts configures the file uplink.
type Opts struct {
	Dir string // where spool files are written
	// RotateBytes seals a file before it would grow past this size (a
	// single larger record gets a file of its own); 0 means 8 MiB.
	RotateBytes int64
	// RotateInterval seals a file this long after it was opened; 0 rotates
	// by size only.
	RotateInterval time.Duration
	// BatchMax is the most records written per write+fsync; 0 means 1024.
	BatchMax int
	// SyncInterval spaces the write+fsync calls at a trickle: after one,
	// the next waits this long unless BatchMax records are ready. Records
	// wait in the outbox meanwhile, so nothing is at risk; the card is
	// spared a page rewrite per record. 0 writes as soon as records come.
	SyncInterval time.Duration
	// Flush, when closed, ends the SyncInterval pacing: the daemon is
	// stopping, and its final flush has a deadline that a wait of a whole
	// interval would use up. nil = never.
	Flush <-chan struct{}
	// Logger receives repairs and I/O errors; the caller sets its component
	// attribute. nil discards.
	Logger *slog.Logger
	// Now stamps file names and measures file age; nil means time.Now.
	Now func() time.Time
}

// DefaultOpts returns the defaults for a spool in dir.
func DefaultOpts(dir string) Opts {
	return Opts{Dir: dir, RotateBytes: DefaultRotateBytes, RotateInterval: DefaultRotateInterval, BatchMax: DefaultBatchMax}
}

// Uplink spools records into files.
type Uplink struct {
	o   Opts
	log *slog.Logger
	// retryMin and retryMax bound the backoff after an I/O error.
	retryMin, retryMax time.Duration
}

var _ uplink.Uplink = (*Uplink)(nil)

// New validates o and fills in defaults.
func New(o Opts) (*Uplink, error) {
	if o.Dir == "" {
		return nil, fmt.Errorf("%w: set the directory to spool records into", ErrMissingDir)
	}
	if o.RotateBytes < 0 || o.RotateInterval < 0 || o.BatchMax < 0 || o.SyncInterval < 0 {
		return nil, fmt.Errorf("%w: rotate bytes %d, rotate interval %v and batch max %d must not be negative",
			ErrInvalidOption, o.RotateBytes, o.RotateInterval, o.BatchMax)
	}
	if o.RotateBytes == 0 {
		o.RotateBytes = DefaultRotateBytes
	}
	if o.BatchMax == 0 {
		o.BatchMax = DefaultBatchMax
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Uplink{o: o, log: log, retryMin: 250 * time.Millisecond, retryMax: 30 * time.Second}, nil
}

// Name is the uplink's key in the outbox's acknowledgement table.
func (u *Uplink) Name() string { return "file" }

// Run spools records from q until ctx is done, then seals the open file and
// returns nil. I/O errors are logged and retried with backoff; records stay
// in the outbox until they are on disk.
func (u *Uplink) Run(ctx context.Context, q uplink.Queue) error {
	r := &run{u: u, q: q, retries: backoff.New(u.retryMin, u.retryMax, nil)}
	defer r.stopTimer()
	for {
		if ctx.Err() != nil {
			r.shutdown()
			return nil
		}
		if err := r.step(ctx); err != nil {
			r.retry(ctx)
		}
	}
}

// run is the state of one Run.
type run struct {
	u       *Uplink
	q       uplink.Queue
	cur     *spool    // the open file, nil between files
	ready   bool      // Dir exists and leftovers are repaired
	made    bool      // Dir was created or found once: never create it again
	written uint64    // highest seq fsynced this run
	next    time.Time // no write before this unless a full batch waits (SyncInterval)
	acked   uint64    // highest seq the queue is known to hold acked
	retries backoff.Backoff
	timer   *time.Timer
}

// step does one unit of work: prepare, ack, or write one batch, or wait for
// records. An error has been logged; the caller backs off.
func (r *run) step(ctx context.Context) error {
	u := r.u
	if !r.ready {
		if err := u.prepare(!r.made); err != nil {
			u.logIOError("prepare spool dir", err)
			return err
		}
		r.ready, r.made = true, true
	}
	if r.written > r.acked {
		if err := r.q.Ack(r.written); err != nil {
			u.log.Error("uplink/file: ack spooled records failed; retrying", "seq", r.written, "err", err)
			return err
		}
		r.acked = r.written
	}
	changed := r.q.Changed() // before Pending, so an append in between still wakes us
	acked, err := r.q.Acked()
	if err != nil {
		u.log.Error("uplink/file: read acked seq failed; retrying", "err", err)
		return err
	}
	r.acked = max(r.acked, acked)
	recs, err := r.q.Pending(max(acked, r.written), u.o.BatchMax)
	if err != nil {
		u.log.Error("uplink/file: read pending records failed; retrying", "err", err)
		return err
	}
	if len(recs) == 0 {
		if r.cur != nil && r.cur.due(u) {
			r.seal("interval")
			return nil
		}
		r.idle(ctx, changed)
		return nil
	}
	if wait := r.next.Sub(u.o.Now()); wait > 0 && len(recs) < u.o.BatchMax && !closed(u.o.Flush) {
		select {
		case <-ctx.Done():
		case <-r.startTimer(wait):
		case <-u.o.Flush:
		}
		return nil
	}
	last, err := r.write(recs)
	if err != nil {
		u.logIOError("write spool file", err)
		r.abandon()
		return err
	}
	r.written = last
	if u.o.SyncInterval > 0 {
		r.next = u.o.Now().Add(u.o.SyncInterval)
	}
	r.retries.Reset()
	if r.cur.size >= u.o.RotateBytes {
		r.seal("size")
	} else if r.cur.due(u) {
		r.seal("interval")
	}
	return nil
}

// idle waits for new records, ctx, or the open file's rotation time.
func (r *run) idle(ctx context.Context, changed <-chan struct{}) {
	var rotate <-chan time.Time
	if r.cur != nil && r.u.o.RotateInterval > 0 {
		rotate = r.startTimer(r.cur.opened.Add(r.u.o.RotateInterval).Sub(r.u.o.Now()))
	}
	select {
	case <-changed:
	case <-ctx.Done():
	case <-rotate:
	}
}

// retry sleeps the next backoff, or until ctx is done.
func (r *run) retry(ctx context.Context) {
	_ = r.retries.Wait(ctx, r.retries.Next()) // ctx's end is Run's to see
}

func (r *run) startTimer(d time.Duration) <-chan time.Time {
	if r.timer == nil {
		r.timer = time.NewTimer(d)
	} else {
		r.timer.Reset(d)
	}
	return r.timer.C
}

func (r *run) stopTimer() {
	if r.timer != nil {
		r.timer.Stop()
	}
}

// write appends the longest prefix of recs that fits the open file (opening
// one if needed), fsyncs, and returns the last seq written.
func (r *run) write(recs []store.Record) (uint64, error) {
	u := r.u
	if r.cur != nil && r.cur.size+int64(len(recs[0].Data)) > u.o.RotateBytes {
		r.seal("size")
	}
	if r.cur == nil {
		sp, err := u.create(recs[0].Seq)
		if err != nil {
			return 0, err
		}
		r.cur = sp
	}
	n, total := 0, int64(0)
	for _, rec := range recs {
		if n > 0 && r.cur.size+total+int64(len(rec.Data)) > u.o.RotateBytes {
			break
		}
		n++
		total += int64(len(rec.Data))
	}
	buf := make([]byte, 0, total)
	for _, rec := range recs[:n] {
		buf = append(buf, rec.Data...)
	}
	if _, err := r.cur.f.Write(buf); err != nil {
		return 0, err
	}
	// Only fsynced bytes count: after a failed fsync the kernel may have
	// dropped the pages, so abandon() cuts the file back to cur.size.
	if err := r.cur.f.Sync(); err != nil {
		return 0, fmt.Errorf("fsync %s: %w", r.cur.f.Name(), err)
	}
	r.cur.size += total
	return recs[n-1].Seq, nil
}

// seal closes and renames the open file. On failure the file stays a .part
// and is repaired before the next file is opened.
func (r *run) seal(why string) {
	sp := r.cur
	r.cur = nil
	final, err := r.u.sealFile(sp.f, sp.size)
	if err != nil {
		r.u.logIOError("seal spool file", err)
		r.ready = false
		return
	}
	r.u.log.Debug("uplink/file: sealed spool file", "file", final, "bytes", sp.size, "reason", why)
}

// abandon gives up the open file after an error: it cuts off whatever was
// not fsynced and seals what was. If even that fails, the file is left as a
// .part for the repair that runs before the next file is opened.
func (r *run) abandon() {
	sp := r.cur
	r.cur = nil
	if sp == nil {
		return
	}
	err := sp.f.Truncate(sp.size)
	if err == nil {
		err = sp.f.Sync()
	}
	if err != nil {
		sp.f.Close()
		r.ready = false
		return
	}
	if _, err := r.u.sealFile(sp.f, sp.size); err != nil {
		r.ready = false
	}
}

// shutdown seals the open file and acks what was written, best effort: what
// is not acked is sent again next time.
func (r *run) shutdown() {
	if r.cur != nil {
		r.seal("shutdown")
	}
	if r.written > r.acked {
		if err := r.q.Ack(r.written); err != nil {
			r.u.log.Warn("uplink/file: ack at shutdown failed; those records will be spooled again", "seq", r.written, "err", err)
		}
	}
}

// spool is the open .part file.
type spool struct {
	f      *os.File
	size   int64 // bytes written and fsynced
	opened time.Time
}

func (sp *spool) due(u *Uplink) bool {
	return u.o.RotateInterval > 0 && u.o.Now().Sub(sp.opened) >= u.o.RotateInterval
}

const (
	partExt = ".cbor.part"
	doneExt = ".cbor"
)

// prepare creates Dir (not its parents) when create is set, and repairs
// leftover .part files.
func (u *Uplink) prepare(create bool) error {
	if create {
		if err := os.Mkdir(u.o.Dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("uplink/file: create spool dir: %w", err)
		}
	}
	st, err := os.Stat(u.o.Dir)
	if err != nil {
		return fmt.Errorf("uplink/file: spool dir: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("uplink/file: spool dir %s: %w", u.o.Dir, syscall.ENOTDIR)
	}
	return u.repairAll()
}

// create opens a new .part file for records from seq first.
func (u *Uplink) create(first uint64) (*spool, error) {
	now := u.o.Now()
	base := fmt.Sprintf("records-%s-%d", now.UTC().Format("20060102T150405"), first)
	for i := 1; ; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		path := filepath.Join(u.o.Dir, name+partExt)
		if _, err := os.Lstat(filepath.Join(u.o.Dir, name+doneExt)); err == nil {
			continue // never overwrite a sealed file from a run in the same second
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("uplink/file: create spool file: %w", err)
		}
		if err := syncDir(u.o.Dir); err != nil {
			f.Close()
			os.Remove(path)
			return nil, fmt.Errorf("uplink/file: fsync spool dir: %w", err)
		}
		return &spool{f: f, opened: now}, nil
	}
}

// sealFile closes f (already fsynced up to size) and renames it from .part
// to .cbor, or removes it when empty. It returns the final path.
func (u *Uplink) sealFile(f *os.File, size int64) (string, error) {
	part := f.Name()
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("uplink/file: close %s: %w", part, err)
	}
	if size == 0 {
		if err := os.Remove(part); err != nil {
			return "", fmt.Errorf("uplink/file: remove empty %s: %w", part, err)
		}
		return "", syncDir(filepath.Dir(part))
	}
	base := strings.TrimSuffix(part, partExt)
	final := base + doneExt
	for i := 2; ; i++ {
		if _, err := os.Lstat(final); errors.Is(err, fs.ErrNotExist) {
			break
		}
		final = fmt.Sprintf("%s-%d%s", base, i, doneExt)
	}
	if err := os.Rename(part, final); err != nil {
		return "", fmt.Errorf("uplink/file: seal %s: %w", part, err)
	}
	if err := syncDir(filepath.Dir(part)); err != nil {
		return "", fmt.Errorf("uplink/file: fsync spool dir: %w", err)
	}
	return final, nil
}

// logIOError logs err with what the operator can do about it.
func (u *Uplink) logIOError(op string, err error) {
	var hint string
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		hint = "the spool disk is full: free space or point uplinks.file.dir at a larger disk"
	case errors.Is(err, syscall.EROFS):
		hint = "the spool disk is mounted read-only: remount it read-write (check dmesg for disk errors)"
	case errors.Is(err, fs.ErrPermission):
		hint = "the spool dir is not writable: give the edge-agent user write access to it"
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		hint = "the spool dir is missing: mount the export disk or create the directory"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		hint = "the daemon is out of file descriptors, the disk is fine: `ls /proc/$(pidof edge-agent)/fd | wc -l`, and see the status socket's clients"
	default:
		hint = "check the disk (dmesg)"
	}
	u.log.Error("uplink/file: "+op+" failed; records stay in the outbox and the write is retried",
		"dir", u.o.Dir, "err", err, "hint", hint)
}

// syncDir makes a create or rename in dir durable. Filesystems that cannot
// fsync a directory say EINVAL; their renames are as durable as they get.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) {
		return nil
	}
	return err
}

// closed reports whether ch is closed; a nil ch never is.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
