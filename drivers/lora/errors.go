package lora

import (
	"errors"
	"fmt"
)

// Sentinel errors. Match them with errors.Is; returned errors wrap them with
// the operation, the gateway or address, and what to do next.
var (
	// ErrAddrInUse is returned by Probe and Run when another process (most
	// often another packet forwarder server such as a LoRaWAN network server
	// or gateway bridge) is bound to the listen address.
	ErrAddrInUse = errors.New("listen address in use")
	// ErrRunning is returned by Run when the Dev is already running.
	ErrRunning = errors.New("already running")
	// ErrNotRunning is returned by Send when Run is not running, so there
	// is no socket to send on.
	ErrNotRunning = errors.New("server not running")
	// ErrNoDownlinkPath is returned by Send when the gateway has not sent a
	// PULL_DATA yet, so its downlink address is unknown.
	ErrNoDownlinkPath = errors.New("no downlink path to gateway")
	// ErrTxAckTimeout is returned by Send when a protocol v2 gateway did not
	// answer the PULL_RESP with a TX_ACK in time.
	ErrTxAckTimeout = errors.New("no TX_ACK from gateway")
	// ErrTxRejected is returned by Send (wrapped in a *TxError) when the
	// gateway's TX_ACK reports an error.
	ErrTxRejected = errors.New("gateway rejected transmission")
	// ErrInvalidOption is returned by New for an option out of range.
	ErrInvalidOption = errors.New("invalid option")
)

// TxError is the error field of a TX_ACK, such as TOO_LATE or
// COLLISION_BEACON (PROTOCOL.TXT §6). It matches ErrTxRejected.
type TxError struct {
	Gateway string
	Code    string
}

func (e *TxError) Error() string {
	return fmt.Sprintf("lora: gateway %s rejected transmission: %s", e.Gateway, e.Code)
}

// Is reports whether target is ErrTxRejected.
func (e *TxError) Is(target error) bool { return target == ErrTxRejected }
