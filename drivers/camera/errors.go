package camera

import "errors"

// Sentinel errors. Each is wrapped with the operation and the path it
// concerns; test for them with errors.Is.
var (
	// ErrNoDir is returned when the watched directory does not exist (the
	// camera software is not installed, or its card is not mounted). Probe
	// reports it as Skipped.
	ErrNoDir = errors.New("directory not found")
	// ErrNotDir is returned when the watched path exists but is not a
	// directory. Probe reports it as Failed.
	ErrNotDir = errors.New("not a directory")
	// ErrPermission is returned when the watched directory cannot be listed,
	// or the state directory cannot be written, by this user. Probe reports
	// it as Failed.
	ErrPermission = errors.New("permission denied")
	// ErrMissingOption is returned by New when a required option (Dir,
	// StateDir) is empty.
	ErrMissingOption = errors.New("missing option")
	// ErrInvalidOption is returned by New when an option is malformed or out
	// of range.
	ErrInvalidOption = errors.New("invalid option")
)
