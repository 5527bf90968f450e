//go:build linux

package lora

import (
	"encoding/binary"
	"errors"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dropsSupported: Linux reports the socket's drop counter with each datagram.
const dropsSupported = true

// sockResult is what setupSocket could get from the kernel.
type sockResult struct {
	granted int   // SO_RCVBUF read back: the kernel's accounting limit, in bytes
	forced  bool  // SO_RCVBUFFORCE worked (root or CAP_NET_ADMIN)
	err     error // the first error, if any option failed
}

// setupSocket asks for a receive buffer whose kernel accounting limit is
// want bytes, and enables SO_RXQ_OVFL. The kernel doubles the value given to
// SO_RCVBUF (socket(7)) and accounts each datagram at its skb truesize, so
// want/2 is requested. SO_RCVBUFFORCE is tried first because it ignores
// net.core.rmem_max; it needs CAP_NET_ADMIN, and EPERM falls back to
// SO_RCVBUF, which the kernel silently caps at rmem_max: hence the read-back.
func setupSocket(c syscall.RawConn, want int, tryForce bool) sockResult {
	var r sockResult
	cerr := c.Control(func(fd uintptr) {
		s := int(fd)
		req := max(want/2, 1)
		if tryForce {
			if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, req); err == nil {
				r.forced = true
			}
		}
		if !r.forced {
			if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF, req); err != nil {
				r.err = errors.Join(r.err, err)
			}
		}
		if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1); err != nil {
			r.err = errors.Join(r.err, err)
		}
		got, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF)
		if err != nil {
			r.err = errors.Join(r.err, err)
		}
		r.granted = got
	})
	if cerr != nil {
		r.err = errors.Join(r.err, cerr)
	}
	return r
}

// parseDrops reads the SO_RXQ_OVFL control message: the number of datagrams
// the kernel dropped on this socket since it was opened, as of the datagram
// it accompanies. The kernel adds it only once the counter is non-zero.
func parseDrops(oob []byte) (uint32, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_RXQ_OVFL && len(m.Data) >= 4 {
			return binary.NativeEndian.Uint32(m.Data), true
		}
	}
	return 0, false
}

// oobSize fits one SO_RXQ_OVFL message.
var oobSize = unix.CmsgSpace(4)

// readDrops polls the socket's drop counter (SO_MEMINFO, SK_MEMINFO_DROPS):
// unlike SO_RXQ_OVFL it needs no datagram to arrive.
func readDrops(c interface {
	SyscallConn() (syscall.RawConn, error)
}) (uint32, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	const skMeminfoDrops = 8 // linux/sock_diag.h
	var info [skMeminfoVars]uint32
	ok := false
	_ = rc.Control(func(fd uintptr) {
		l := uint32(len(info) * 4)
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&l)), 0)
		ok = e == 0 && l >= (skMeminfoDrops+1)*4
	})
	return info[skMeminfoDrops], ok
}

const skMeminfoVars = 9
