// Package sdnotify speaks systemd's notify protocol (sd_notify(3)) without
// cgo: newline-separated KEY=VALUE lines in one datagram to the unix socket
// named by $NOTIFY_SOCKET. A Notifier is safe for concurrent use.
package sdnotify

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Notifier sends to one notify socket. The zero value and a nil *Notifier
// send nothing, which is what a process not started by systemd wants.
type Notifier struct {
	addr     *net.UnixAddr
	watchdog time.Duration
}

// FromEnv builds a Notifier from $NOTIFY_SOCKET and $WATCHDOG_USEC/$WATCHDOG_PID
// as systemd sets them; getenv is os.Getenv in production. It returns nil when
// the process was not started with a notify socket.
func FromEnv(getenv func(string) string, pid int) (*Notifier, error) {
	path := getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil, nil
	}
	if !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "@") {
		return nil, fmt.Errorf("sdnotify: NOTIFY_SOCKET %q is neither a path nor an abstract socket", path)
	}
	n := &Notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
	if path[0] == '@' { // abstract namespace: the name starts with a NUL byte
		n.addr.Name = "\x00" + path[1:]
	}
	if usec := getenv("WATCHDOG_USEC"); usec != "" {
		v, err := strconv.ParseInt(usec, 10, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("sdnotify: WATCHDOG_USEC %q is not a positive integer", usec)
		}
		// WATCHDOG_PID names the process meant to ping; a child that
		// inherited the environment must stay silent.
		if wp := getenv("WATCHDOG_PID"); wp == "" || wp == strconv.Itoa(pid) {
			n.watchdog = time.Duration(v) * time.Microsecond
		}
	}
	return n, nil
}

// Notify sends state, e.g. "READY=1" or "WATCHDOG=1\nSTATUS=ok".
func (n *Notifier) Notify(state string) error {
	if n == nil || n.addr == nil {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sdnotify: connect to %s: %w", n.addr.Name, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: send: %w", err)
	}
	return nil
}

// WatchdogInterval is the service's WatchdogSec; 0 when the watchdog is off.
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}
