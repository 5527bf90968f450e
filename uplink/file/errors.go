package file

import "errors"

var (
	// ErrMissingDir is returned by New when Opts.Dir is empty.
	ErrMissingDir = errors.New("uplink/file: spool dir is not set")
	// ErrInvalidOption is returned by New when an option is out of range,
	// such as a negative RotateBytes.
	ErrInvalidOption = errors.New("uplink/file: invalid option")
)
