package store

import "errors"

// Sentinel errors. Match them with errors.Is: the store wraps them with the
// operation and the path.
var (
	// ErrLocked is returned by Open when another process holds the outbox
	// file lock for longer than Options.LockTimeout.
	ErrLocked = errors.New("store: another edge-agent process has the outbox open: stop it or use `edge-agent status`")

	// ErrNotContiguous is returned by Append when the entries do not continue
	// the head exactly (head.Seq+1, +2, …). Nothing is written.
	ErrNotContiguous = errors.New("store: entries do not continue the chain head")

	// ErrClosed is returned when a method is called on a closed Store.
	ErrClosed = errors.New("store: outbox is closed")

	// ErrCorrupt is returned by a read-only Open of a damaged outbox file, and
	// wrapped by every consistency failure Check reports. A writable Open
	// does not return it: it moves the damaged file aside and starts a new
	// chain (see Recovery).
	ErrCorrupt = errors.New("store: outbox is corrupt")

	// ErrReadOnly is returned by Append and Ack on a store opened with
	// Options.ReadOnly.
	ErrReadOnly = errors.New("store: outbox is open read-only")
)
