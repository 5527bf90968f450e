package obd

import "errors"

// Sentinel errors; test for them with errors.Is.
var (
	// ErrNoDevice is returned when the serial port does not exist: the
	// adapter is unplugged or the Bluetooth serial link is not bound.
	// Probe reports it as Skipped.
	ErrNoDevice = errors.New("adapter not found")
	// ErrPermission is returned when the port exists but may not be opened.
	ErrPermission = errors.New("permission denied on the serial port")
	// ErrNoAdapter is returned when the port opens but nothing answers AT Z
	// like an ELM327 at any of the baud rates tried.
	ErrNoAdapter = errors.New("no ELM327 answered")
	// ErrGarbage is returned for replies with bytes an ELM327 never prints,
	// the sign of a wrong baud rate.
	ErrGarbage = errors.New("unreadable reply")
	// ErrMalformed is returned for a reply that is text but not the data
	// the request asks for.
	ErrMalformed = errors.New("malformed reply")
	// ErrTimeout is returned when the adapter sends nothing within the
	// reply timeout.
	ErrTimeout = errors.New("no reply from the adapter")
	// ErrInvalidOption is returned by New for an option out of range.
	ErrInvalidOption = errors.New("invalid option")
)
