package collect

import "errors"

// Sentinel errors; compare with errors.Is.
var (
	// ErrConfig is returned when collector.toml is missing, is not TOML, sets
	// an unknown key or an invalid value; the message names the key.
	ErrConfig = errors.New("collect: invalid collector config")
	// ErrCorrupt is returned when collector.db holds something this build
	// did not write (a record value too short, a chain summary that does not
	// decode). Restore the file from a backup or start a new data_dir.
	ErrCorrupt = errors.New("collect: collector database is corrupt")
	// ErrFormat is returned when collector.db was written by a newer build.
	ErrFormat = errors.New("collect: collector database format is newer than this build")
)
