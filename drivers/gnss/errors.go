package gnss

import "errors"

// Sentinel errors. Match them with errors.Is: the returned errors wrap them
// with the operation and the offending input.
var (
	// ErrBadChecksum is returned by Assembler.Feed when a sentence's "*hh"
	// checksum does not match its contents (line noise, a dropped byte).
	ErrBadChecksum = errors.New("bad checksum")
	// ErrGarbled is returned by Assembler.Feed when a line is not a
	// well-formed sentence: truncated, no checksum, binary bytes, or a field
	// that does not parse.
	ErrGarbled = errors.New("garbled sentence")
	// ErrNoChecksum is returned by Assembler.Feed for a sentence without a
	// "*hh" checksum when the receiver is not configured to omit them
	// (checksum = "optional"): at the wrong baud rate or on a noisy line
	// such a sentence cannot be told from damage.
	ErrNoChecksum = errors.New("sentence without checksum")
	// ErrLate is returned by Assembler.Feed for a sentence of an epoch that
	// was already completed (the receiver paused in mid-cycle): one epoch
	// gives one Fix.
	ErrLate = errors.New("sentence of a completed epoch")
	// ErrInvalidValue is returned when a checksum-valid sentence, frame or
	// gpsd report carries a value that cannot be true: NaN, infinity, a
	// negative DOP, an altitude beyond the atmosphere.
	ErrInvalidValue = errors.New("invalid value")
	// ErrUnknown is returned by Assembler.Feed for a well-formed sentence the
	// assembler does not use: proprietary ($P…) sentences and types other
	// than RMC, GGA, GNS, GSA, VTG, GSV and ZDA. It is not a fault.
	ErrUnknown = errors.New("sentence not used")
	// ErrNoDevice is returned by Dev.Probe when the configured serial device
	// node does not exist.
	ErrNoDevice = errors.New("no device")
	// ErrPermission is returned by Dev.Probe and Dev.Run when the serial
	// device exists but this user may not open it.
	ErrPermission = errors.New("permission denied")
	// ErrNoGPSD is returned by Dev.Probe when nothing listens at GPSDAddr.
	ErrNoGPSD = errors.New("gpsd not reachable")
	// ErrHighFD is returned when the serial port was given a file descriptor
	// of 1024 or more, which go.bug.st/serial cannot select(2) on (it would
	// panic on the first read).
	ErrHighFD = errors.New("serial port file descriptor too high")
)
