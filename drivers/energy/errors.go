package energy

import "errors"

// Sentinel errors; test for them with errors.Is.
var (
	// ErrNoDevice is returned when the serial port does not exist or the
	// Modbus TCP device refuses the connection. Probe reports it as Skipped.
	ErrNoDevice = errors.New("device not found")
	// ErrPermission is returned when the serial port may not be opened.
	ErrPermission = errors.New("permission denied on the serial port")
	// ErrTimeout is returned when the slave does not answer in time: on
	// RS-485 a wrong slave id, baud rate or parity, or A and B swapped.
	ErrTimeout = errors.New("no answer from the slave")
	// ErrCRC is returned for an RTU frame whose CRC-16 does not match:
	// noise, a missing terminator, or a wrong baud rate or parity.
	ErrCRC = errors.New("bad CRC")
	// ErrException is returned (inside an *ExceptionError) when the slave
	// answers with a Modbus exception.
	ErrException = errors.New("modbus exception")
	// ErrMalformed is returned for a response that does not match the
	// request (function, length, transaction id).
	ErrMalformed = errors.New("malformed response")
	// ErrNotSunSpec is returned when the SunSpec base address does not hold
	// the "SunS" marker or no supported model follows it.
	ErrNotSunSpec = errors.New("no SunSpec device")
	// ErrInvalidOption is returned by New for an option out of range.
	ErrInvalidOption = errors.New("invalid option")
)
