package store

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// errZeroLength and errReplaced steer Open internally; they never escape.
var (
	errZeroLength = errors.New("zero-length file")
	errReplaced   = errors.New("file was replaced while recovering it")
	errPanicked   = errors.New("panicked")
)

// Open opens or creates the outbox at path. See the package comment for what
// it checks and how it recovers a damaged file.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("store: open: empty outbox path: set it in the config")
	}
	opts = opts.withDefaults()
	log := opts.Logger.With("component", "store")
	var rec *Recovery
	for attempt := 0; ; attempt++ {
		s, bad, err := openOnce(path, opts, log, rec)
		if bad == nil {
			return s, err
		}
		if opts.ReadOnly {
			return nil, fmt.Errorf("store: open %s read-only: %w: run `edge-agent doctor`; the daemon moves it aside at its next start", path, bad.err)
		}
		if rec != nil || attempt >= 3 {
			// A file we just created is damaged again: the disk, not the
			// file, is the problem. Say so rather than loop.
			return nil, fmt.Errorf("store: open %s: new outbox failed its check too, the storage may be failing: %w", path, bad.err)
		}
		moved, err := moveAside(path, bad.id, opts)
		if errors.Is(err, errReplaced) {
			continue // another process recovered it first; look again
		}
		if err != nil {
			return nil, err
		}
		rec = &Recovery{At: opts.Now().UTC(), MovedTo: moved, Reason: bad.err.Error(), OldChain: bad.chain}
		log.Error("outbox file was corrupt: moved it aside and started a new chain; records in it were not delivered: "+
			"recover the intact ones with `edge-agent queue export --db "+moved+" --out FILE`",
			"path", path, "moved_to", moved, "reason", rec.Reason, "old_chain", hex.EncodeToString(bad.chain[:]))
	}
}

// fileID identifies the inode Open examined, so recovery renames that file
// and not one another process put in its place.
type fileID struct{ dev, ino uint64 }

// corruption is a damaged file Open must move aside.
type corruption struct {
	err   error // wraps ErrCorrupt
	id    fileID
	chain [16]byte
}

// opened is what the OpenFile hook saw while holding the lock.
type opened struct {
	f       *os.File
	id      fileID
	created bool // created by this Open and still empty under the lock
}

func (o *opened) openFile(readOnly bool, timeout time.Duration) func(string, int, os.FileMode) (*os.File, error) {
	return func(name string, flag int, perm os.FileMode) (*os.File, error) {
		// Create with O_EXCL so that a zero-length file that already existed
		// (power cut during creation) is told apart from one made just now.
		f, err := os.OpenFile(name, flag&^os.O_CREATE, perm)
		ours := false
		if errors.Is(err, fs.ErrNotExist) && flag&os.O_CREATE != 0 {
			f, err = os.OpenFile(name, flag|os.O_EXCL, perm)
			ours = err == nil
			if errors.Is(err, fs.ErrExist) {
				f, err = os.OpenFile(name, flag&^os.O_CREATE, perm)
			}
		}
		if err != nil {
			return nil, err
		}
		// Take the lock here, before bbolt looks at the size: bbolt would
		// initialise a zero-length file as a new database.
		if err := lockFile(f, !readOnly, timeout); err != nil {
			_ = f.Close()
			return nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		o.f, o.id = f, idOf(fi)
		o.created = ours && fi.Size() == 0
		if !o.created && fi.Size() == 0 {
			_ = f.Close()
			return nil, errZeroLength
		}
		return f, nil
	}
}

func idOf(fi os.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{dev: uint64(st.Dev), ino: st.Ino}
	}
	return fileID{}
}

// lockFile takes a flock on f, polling until timeout. The lock belongs to
// f's open file description, which bbolt then locks again without waiting.
func lockFile(f *os.File, exclusive bool, timeout time.Duration) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case !errors.Is(err, syscall.EWOULDBLOCK):
			return fmt.Errorf("store: lock %s: %w", f.Name(), err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return ErrLocked
		}
		time.Sleep(min(left, 50*time.Millisecond))
	}
}

// protect runs fn turning a panic, or a memory fault in the mmap (a
// truncated file), into an ErrCorrupt error instead of a crash. bbolt trusts
// the page structure it reads, so garbage makes it index out of range or read
// past the end of the file.
func protect(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: bbolt %w reading it: %v", ErrCorrupt, errPanicked, r)
		}
	}()
	return fn()
}

// isCorruptOpenErr reports whether bbolt.Open failed because of the file's
// contents. Other failures (permissions, I/O errors, out of memory) are
// returned as they are: moving the file aside would not fix them and would
// lose its records.
func isCorruptOpenErr(err error) bool {
	for _, e := range []error{errZeroLength, berrors.ErrInvalid, berrors.ErrVersionMismatch, berrors.ErrChecksum, io.EOF, io.ErrUnexpectedEOF} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// boltOptions sizes bbolt for a Pi: the default (small) initial mmap, since
// address space is scarce on 32-bit ARM, and a hard cap on the file.
func boltOptions(opts Options, o *opened) *bolt.Options {
	bo := &bolt.Options{
		Timeout:  opts.LockTimeout,
		ReadOnly: opts.ReadOnly,
		OpenFile: o.openFile(opts.ReadOnly, opts.LockTimeout),
		// Load the freelist inside Open, where faults are recovered, and
		// not first inside tx.Check's own goroutine, where they are not.
		PreLoadFreelist: true,
	}
	if opts.MaxBytes > 0 {
		bo.MaxSize = int(min(uint64(opts.MaxBytes)*2+32<<20, uint64(math.MaxInt)))
	}
	return bo
}

// moveAside renames the damaged file to "<path>.corrupt-<UTC time>" while
// holding its lock, and only if it is still the file Open examined.
func moveAside(path string, id fileID, opts Options) (string, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return "", errReplaced
	}
	if err != nil {
		return "", fmt.Errorf("store: move corrupt outbox aside: %w", err)
	}
	defer f.Close()
	if err := lockFile(f, true, opts.LockTimeout); err != nil {
		if errors.Is(err, ErrLocked) {
			return "", fmt.Errorf("store: move corrupt outbox %s aside: %w", path, err)
		}
		return "", err
	}
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("store: move corrupt outbox aside: %w", err)
	}
	if idOf(fi) != id {
		return "", errReplaced
	}
	base := path + ".corrupt-" + opts.Now().UTC().Format("20060102T150405Z")
	dst := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
			break
		}
		dst = fmt.Sprintf("%s.%d", base, i)
	}
	if err := os.Rename(path, dst); err != nil {
		return "", fmt.Errorf("store: move corrupt outbox aside: %w: free space or fix permissions on %s", err, filepath.Dir(path))
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return "", err
	}
	return dst, nil
}

// mkdirDurable creates dir and its missing parents (0700), syncing each
// parent so the new entries survive a power cut.
func mkdirDurable(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirDurable(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("store: create outbox directory: %w", err)
	}
	return syncDir(parent)
}

// syncDir makes a rename or a new file in dir durable; bbolt syncs the file
// but not its directory entry.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: sync directory %s: %w", dir, err)
	}
	return nil
}
