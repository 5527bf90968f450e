package gwmp

import "errors"

// Sentinel errors. Match them with errors.Is; the returned errors wrap them
// with the operation and the offending value. The lora server counts
// malformed datagrams by these reasons.
var (
	// ErrShort is returned by Decode when a datagram is shorter than its
	// header, lacks the gateway EUI its identifier requires, or carries
	// bytes after a header-only message.
	ErrShort = errors.New("gwmp: datagram too short")
	// ErrTooLarge is returned by Decode when a datagram exceeds MaxDatagram.
	ErrTooLarge = errors.New("gwmp: datagram too large")
	// ErrVersion is returned by Decode when byte 0 is not protocol version
	// 1 or 2.
	ErrVersion = errors.New("gwmp: unsupported protocol version")
	// ErrIdentifier is returned by Decode when byte 3 is not one of the six
	// identifiers the protocol defines.
	ErrIdentifier = errors.New("gwmp: unknown identifier")
	// ErrJSON is returned by Decode when a body is not the JSON object its
	// identifier requires, or a field has the wrong JSON type.
	ErrJSON = errors.New("gwmp: bad json body")
	// ErrField is returned when a field is present and well-typed but its
	// value is out of range: a frequency finer than 1 Hz, undecodable
	// base64, a size that disagrees with the data, an unknown data rate.
	ErrField = errors.New("gwmp: invalid field value")
)
