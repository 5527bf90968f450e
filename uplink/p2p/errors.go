package p2p

import "errors"

// Sentinel errors; compare with errors.Is.
var (
	// ErrNoHostKey is returned when the device signer cannot lend its key to
	// the libp2p host (a secure element), or the key's peer ID is not the
	// device id. Use the mqtt uplink with such a signer.
	ErrNoHostKey = errors.New("p2p: signer cannot be used as the libp2p identity")

	// ErrInvalidConfig is returned by New and NewNode when options are
	// missing or contradict each other; the message names the option.
	ErrInvalidConfig = errors.New("p2p: invalid configuration")

	// ErrBadReceipt is returned when receipt bytes are malformed or their
	// signature does not verify against the collector key they name.
	ErrBadReceipt = errors.New("p2p: bad receipt")
)
