package store

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Full-disk rules. bbolt never overwrites a page in place: every commit,
// an ack or a delete included, writes new pages, so on a full filesystem an
// outbox that stopped growing could not shrink either (every ack failed with
// ENOSPC and the uplink re-sent the same records forever). Two rules keep
// it moving:
//
//   - Reserve: the file's holes and Options.Reserve bytes beyond its end are
//     allocated with fallocate(KEEP_SIZE) after every commit that grew the
//     file, so the pages a commit needs have blocks even when the
//     filesystem has none left. Appends do not plan to use the reserve;
//     acks and deletes, which free space, may.
//   - Room: before an Append, the free space actually left (statfs, minus
//     Options.MinFree, plus bbolt's own free pages) caps the records the
//     batch may add, exactly like MaxBytes: the oldest records are evicted
//     and announced as gaps. So a quota larger than the card, or another
//     program filling it, costs the oldest records, never the newest or
//     the acks.

// space is the full-disk state; guarded by Store.writeMu.
type space struct {
	file     *os.File // bbolt's own descriptor (same open file description)
	dir      string
	reserved int64     // file size the last successful fallocate covered, with the reserve
	lastTry  time.Time // last failed fallocate; retried at most once a second
	short    bool      // the last fallocate failed: the reserve may be partly missing
}

// keepReserve allocates the file's holes and the reserve beyond its end.
// It costs one fstat when nothing changed. Failure is remembered, not
// returned: the commit it follows has succeeded.
func (s *Store) keepReserve() {
	sp := &s.space
	if s.opts.Reserve <= 0 || sp.file == nil {
		return
	}
	fi, err := sp.file.Stat()
	if err != nil {
		return
	}
	want := fi.Size() + s.opts.Reserve
	if want == sp.reserved && !sp.short {
		return
	}
	now := s.opts.Now()
	if sp.short && now.Sub(sp.lastTry) < time.Second {
		return
	}
	err = unix.Fallocate(int(sp.file.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, want)
	switch {
	case err == nil:
		if sp.short {
			s.log.Info("outbox space reserve restored", "reserve", s.opts.Reserve)
		}
		sp.reserved, sp.short = want, false
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS):
		sp.file = nil // this filesystem cannot reserve; Room still applies
		s.log.Warn("the filesystem cannot preallocate: on a full disk acks may fail until space is freed", "dir", sp.dir, "err", err)
	default:
		if !sp.short {
			s.log.Warn("cannot keep the outbox space reserve: the filesystem is full; the oldest records are evicted to make room",
				"dir", sp.dir, "err", err)
		}
		sp.short, sp.lastTry = true, now
	}
}

// roomLimit returns the most record bytes the outbox may hold after
// appending batch bytes in n records, given the free space left, or 0 when
// space is no limit (or cannot be measured).
func (s *Store) roomLimit(st state, batch uint64, n int) uint64 {
	if s.opts.ReadOnly || s.space.dir == "" {
		return 0
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(s.space.dir, &fs); err != nil {
		return 0
	}
	room := int64(fs.Bavail)*int64(fs.Bsize) - s.opts.MinFree
	room += int64(s.db.Stats().FreeAlloc) // pages bbolt reuses before it grows
	if !s.space.short && s.space.file != nil {
		// Allocated but unused: the file's tail beyond the last page.
		if fi, err := s.space.file.Stat(); err == nil {
			room += max(0, fi.Size()-s.highWater())
		}
	}
	// A record costs its bytes, its key and leaf header, and page slack.
	need := int64(batch) + int64(n)*40
	need += need/8 + 16<<10
	if room >= need {
		return 0
	}
	fit := max(0, room-16<<10) * 7 / 8 // the part of the room records may fill
	return st.bytes + uint64(fit)
}

// highWater is the end of the last page bbolt uses.
func (s *Store) highWater() int64 {
	var hw int64
	s.db.View(func(tx *bolt.Tx) error { hw = tx.Size(); return nil })
	return hw
}

// initSpace remembers bbolt's descriptor and directory for writable opens.
func (s *Store) initSpace(f *os.File) {
	if s.opts.ReadOnly || f == nil {
		return
	}
	s.space = space{file: f, dir: filepath.Dir(s.path)}
	s.keepReserve()
}
