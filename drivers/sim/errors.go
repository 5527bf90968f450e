package sim

import "errors"

var (
	// ErrUnknownKind is returned by New when Opts.Kind is not one of the
	// Kind… constants.
	ErrUnknownKind = errors.New("unknown kind")
	// ErrMissingOption is returned by New when an option the kind needs is
	// empty, such as the directory of a simulated camera.
	ErrMissingOption = errors.New("missing option")
	// ErrInvalidOption is returned by New when an option is set but out of
	// range, such as a negative Interval or Count.
	ErrInvalidOption = errors.New("invalid option")
	// ErrNoEpochs is returned by New when the NMEA track to replay holds no
	// complete epoch.
	ErrNoEpochs = errors.New("NMEA track has no epochs")
)
