//go:build !linux

package lora

import (
	"syscall"
)

// dropsSupported: only Linux reports socket drops per datagram; elsewhere
// Stats.DropsCounted is false.
const dropsSupported = false

type sockResult struct {
	granted int
	forced  bool
	err     error
}

func setupSocket(c syscall.RawConn, want int, _ bool) sockResult {
	var r sockResult
	r.err = c.Control(func(fd uintptr) {
		if err := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, want); err != nil {
			r.err = err
		}
		r.granted, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	})
	return r
}

func parseDrops([]byte) (uint32, bool) { return 0, false }

var oobSize = 64

func readDrops(any) (uint32, bool) { return 0, false }
