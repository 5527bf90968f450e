package status

import "errors"

// Sentinel errors; the client and server wrap them with the socket path and
// what to do next. Compare with errors.Is.
var (
	// ErrNotRunning is returned by Client.Fetch when nothing listens on the
	// socket: it does not exist, or a daemon that crashed left it behind.
	ErrNotRunning = errors.New("status: the daemon is not running")

	// ErrPermission is returned by Client.Fetch when the socket exists but
	// this user may not connect to it (not root, not in the service group).
	ErrPermission = errors.New("status: permission denied on the status socket")

	// ErrSchema is returned by Client.Fetch when the daemon speaks a newer
	// schema than this binary reads (the CLI and daemon are different
	// versions), or the answer is not a status document at all.
	ErrSchema = errors.New("status: unsupported status document")

	// ErrDaemonFailed is returned by Client.Fetch when the daemon answered
	// but could not produce its document (it says why: a value it cannot
	// encode, a store it cannot read).
	ErrDaemonFailed = errors.New("status: the daemon could not report its status")

	// ErrInUse is returned by Listen when another live process already
	// serves the socket path.
	ErrInUse = errors.New("status: another process serves the status socket")
)
