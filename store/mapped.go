package store

import (
	"runtime"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// dropMappedAfter is how many record bytes an uplink may read before the
// pages it walked are dropped from the process's mapping.
const dropMappedAfter = 2 << 20

// mappedReads counts record bytes read through the mmap since the last drop.
type mappedReads struct{ n atomic.Int64 }

// noteWritten counts n appended bytes and, past the threshold, drops the
// mapped pages in a short read transaction. Appends touch only the right
// edge of the tree, but the kernel maps neighbouring pages of the page cache
// around every fault ("fault-around"), and those are the freshly written
// pages: without this, RSS grows with the file.
func (m *mappedReads) noteWritten(s *Store, n int) {
	if m.n.Load()+int64(n) < dropMappedAfter {
		m.n.Add(int64(n))
		return
	}
	s.view(func(tx *bolt.Tx) error {
		m.note(tx, n)
		return nil
	})
}

// note adds n bytes read in tx and, past the threshold, drops the file pages
// mapped into this process. bbolt reads through a shared read-only mmap, so
// draining a large backlog would otherwise leave every page it touched
// resident: a 1M-record drain shows hundreds of MiB of RSS (and cgroup
// memory) that is only page cache. MADV_DONTNEED unmaps the pages from this
// process; the next read faults them back from the page cache. It runs
// inside a read transaction, which holds bbolt's mmap lock, so the mapping
// cannot be replaced while it is advised.
func (m *mappedReads) note(tx *bolt.Tx, n int) {
	if m.n.Add(int64(n)) < dropMappedAfter {
		return
	}
	m.n.Store(0)
	dropMapped(tx)
}

// dropMapped unmaps every page of the file from this process; the caller's
// open transaction keeps the mapping in place while it runs. The address
// comes from bbolt as a uintptr; passing it straight to the syscall keeps it
// out of Go's pointer rules. Failure only costs memory.
func dropMapped(tx *bolt.Tx) {
	unix.Syscall(unix.SYS_MADVISE, tx.DB().Info().Data, uintptr(tx.Size()), unix.MADV_DONTNEED)
}

// drainCheck runs bbolt's page check and returns its first errors, dropping
// the mapped pages all the while. The check walks every page of the file in
// its own goroutine at about 1 GB/s from the page cache; a timer-driven
// dropper falls behind whenever the scheduler or the GC delays it (peaks of
// 100+ MiB on a 300 MB outbox were seen), so this goroutine polls instead,
// dropping between polls. It keeps one core busy for the check's duration.
func drainCheck(tx *bolt.Tx) []error {
	var errs []error
	ch := tx.Check()
	for {
		select {
		case err, ok := <-ch:
			if !ok {
				dropMapped(tx)
				return errs
			}
			if len(errs) < 3 {
				errs = append(errs, err)
			}
		default:
			dropMapped(tx)
			runtime.Gosched()
		}
	}
}
