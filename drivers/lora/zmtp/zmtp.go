// Package zmtp is a minimal ZeroMQ SUB socket: one connection over ZMTP 3.0
// (rfc.zeromq.org/spec/23) with the NULL security mechanism, the only one
// ChirpStack Concentratord's event socket offers. It exists because a full
// ZeroMQ library costs the device binary hundreds of KiB for a read-only
// subscriber of a few dozen lines of protocol.
//
// A Sub subscribes with the ZMTP 3.0 message form (a frame 0x01+prefix),
// which both libzmq and go-zeromq/zmq4 publishers honour; it answers PING
// commands (ZMTP 3.1 heartbeats) with PONG and ignores other commands. It
// never reconnects by itself: the caller dials again after an error.
//
// Concurrency: Recv must be called from one goroutine at a time; Close may
// be called from any goroutine and makes a blocked Recv return.
package zmtp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// Sentinel errors.
var (
	// ErrProtocol is returned when the peer breaks ZMTP: a bad greeting, a
	// security mechanism other than NULL, a socket type that cannot feed a
	// SUB, a malformed frame or an ERROR command.
	ErrProtocol = errors.New("protocol error")
	// ErrTooLarge is returned for a frame or message beyond Sub's limit.
	ErrTooLarge = errors.New("message too large")
	// ErrEndpoint is returned by Dial for an endpoint that is neither
	// ipc://path nor tcp://host:port.
	ErrEndpoint = errors.New("unsupported endpoint")
)

// MaxMessage bounds one message (all its frames): concentratord's events are
// under 2 KiB; a peer announcing more is refused rather than allocated for.
const MaxMessage = 1 << 20

// Frame flags (ZMTP 3.0 §"Framing").
const (
	flagMore    = 0x01
	flagLong    = 0x02
	flagCommand = 0x04
)

// Sub is a subscriber connection.
type Sub struct {
	conn net.Conn
	r    *bufio.Reader
}

// Dial connects to endpoint (ipc:///path or tcp://host:port), performs the
// ZMTP handshake as a SUB socket and subscribes to every message whose first
// frame starts with prefix ("" is all).
func Dial(ctx context.Context, endpoint string, prefix []byte) (*Sub, error) {
	network, addr, ok := strings.Cut(endpoint, "://")
	switch {
	case !ok || addr == "":
		return nil, fmt.Errorf("zmtp: dial %q: %w", endpoint, ErrEndpoint)
	case network == "ipc":
		network = "unix"
	case network == "tcp":
	default:
		return nil, fmt.Errorf("zmtp: dial %q: %w", endpoint, ErrEndpoint)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("zmtp: dial %s: %w", endpoint, err)
	}
	// The handshake must not hang on a peer that accepts and says nothing.
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	s := &Sub{conn: c, r: bufio.NewReaderSize(c, 4096)}
	err = s.handshake(prefix)
	if !stop() {
		err = errors.Join(err, ctx.Err())
	}
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("zmtp: dial %s: %w", endpoint, err)
	}
	return s, nil
}

// greeting is the 64-byte ZMTP 3.0 greeting: signature, version 3.0, the
// NULL mechanism, as-server 0 and filler.
func greeting() []byte {
	g := make([]byte, 64)
	g[0], g[9], g[10], g[11] = 0xFF, 0x7F, 3, 0
	copy(g[12:32], "NULL")
	return g
}

func (s *Sub) handshake(prefix []byte) error {
	if _, err := s.conn.Write(greeting()); err != nil {
		return err
	}
	var g [64]byte
	if _, err := io.ReadFull(s.r, g[:]); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if g[0] != 0xFF || g[9]&1 != 1 {
		return fmt.Errorf("greeting signature %x: %w (is this a ZeroMQ socket?)", g[:10], ErrProtocol)
	}
	if g[10] < 3 {
		return fmt.Errorf("peer speaks ZMTP %d.%d: %w", g[10], g[11], ErrProtocol)
	}
	if mech := strings.TrimRight(string(g[12:32]), "\x00"); mech != "NULL" {
		return fmt.Errorf("security mechanism %q: only NULL is supported: %w", mech, ErrProtocol)
	}
	if err := s.writeFrame(flagCommand, command("READY", "Socket-Type", "SUB")); err != nil {
		return err
	}
	for {
		flags, body, err := s.readFrame()
		if err != nil {
			return fmt.Errorf("ready: %w", err)
		}
		if flags&flagCommand == 0 {
			return fmt.Errorf("message before READY: %w", ErrProtocol)
		}
		name, data, err := parseCommand(body)
		if err != nil {
			return err
		}
		if name == "ERROR" {
			return fmt.Errorf("peer refused the handshake: %q: %w", reason(data), ErrProtocol)
		}
		if name != "READY" {
			continue
		}
		props, err := parseProps(data)
		if err != nil {
			return err
		}
		if t := props["socket-type"]; t != "PUB" && t != "XPUB" {
			return fmt.Errorf("peer is a %q socket, not PUB: %w (is this the event socket, not the command socket?)", t, ErrProtocol)
		}
		break
	}
	return s.writeFrame(0, append([]byte{1}, prefix...))
}

func reason(data []byte) string {
	if len(data) > 0 && int(data[0]) <= len(data)-1 {
		return string(data[1 : 1+int(data[0])])
	}
	return ""
}

// command builds a command body: name length, name, then properties as
// name length, name, 4-byte value length, value.
func command(name string, kv ...string) []byte {
	b := append([]byte{byte(len(name))}, name...)
	for i := 0; i+1 < len(kv); i += 2 {
		b = append(b, byte(len(kv[i])))
		b = append(b, kv[i]...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(kv[i+1])))
		b = append(b, kv[i+1]...)
	}
	return b
}

func parseCommand(body []byte) (string, []byte, error) {
	if len(body) < 1 || int(body[0]) > len(body)-1 {
		return "", nil, fmt.Errorf("command name: %w", ErrProtocol)
	}
	n := int(body[0])
	return string(body[1 : 1+n]), body[1+n:], nil
}

// parseProps reads READY metadata; names are case-insensitive.
func parseProps(b []byte) (map[string]string, error) {
	props := map[string]string{}
	for len(b) > 0 {
		n := int(b[0])
		if len(b) < 1+n+4 {
			return nil, fmt.Errorf("metadata: %w", ErrProtocol)
		}
		name := strings.ToLower(string(b[1 : 1+n]))
		b = b[1+n:]
		vl := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(vl) > uint64(len(b)) {
			return nil, fmt.Errorf("metadata %s: %w", name, ErrProtocol)
		}
		props[name] = string(b[:vl])
		b = b[vl:]
	}
	return props, nil
}

func (s *Sub) writeFrame(flags byte, body []byte) error {
	var hdr []byte
	if len(body) > 255 {
		hdr = binary.BigEndian.AppendUint64([]byte{flags | flagLong}, uint64(len(body)))
	} else {
		hdr = []byte{flags, byte(len(body))}
	}
	_, err := s.conn.Write(append(hdr, body...))
	return err
}

// readFrame reads one frame, refusing sizes beyond MaxMessage.
func (s *Sub) readFrame() (byte, []byte, error) {
	flags, err := s.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	if flags&^(flagMore|flagLong|flagCommand) != 0 {
		return 0, nil, fmt.Errorf("frame flags %#x: %w", flags, ErrProtocol)
	}
	var size uint64
	if flags&flagLong != 0 {
		var b [8]byte
		if _, err := io.ReadFull(s.r, b[:]); err != nil {
			return 0, nil, err
		}
		size = binary.BigEndian.Uint64(b[:])
	} else {
		b, err := s.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		size = uint64(b)
	}
	if size > MaxMessage {
		return 0, nil, fmt.Errorf("frame of %d bytes: %w", size, ErrTooLarge)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(s.r, body); err != nil {
		return 0, nil, err
	}
	return flags, body, nil
}

// Recv returns the next message, one []byte per frame. It answers PING
// commands and skips other commands on the way.
func (s *Sub) Recv() ([][]byte, error) {
	var msg [][]byte
	total := 0
	for {
		flags, body, err := s.readFrame()
		if err != nil {
			return nil, err
		}
		if flags&flagCommand != 0 {
			if len(msg) > 0 {
				return nil, fmt.Errorf("command inside a message: %w", ErrProtocol)
			}
			name, data, err := parseCommand(body)
			if err != nil {
				return nil, err
			}
			switch name {
			case "PING": // TTL (2 bytes), then a context to echo
				if len(data) < 2 {
					return nil, fmt.Errorf("PING: %w", ErrProtocol)
				}
				if err := s.writeFrame(flagCommand, append(command("PONG"), data[2:]...)); err != nil {
					return nil, err
				}
			case "ERROR":
				return nil, fmt.Errorf("peer error %q: %w", reason(data), ErrProtocol)
			}
			continue
		}
		total += len(body)
		if total > MaxMessage {
			return nil, fmt.Errorf("message of over %d bytes: %w", MaxMessage, ErrTooLarge)
		}
		msg = append(msg, body)
		if flags&flagMore == 0 {
			return msg, nil
		}
	}
}

// Close closes the connection; a blocked Recv returns an error.
func (s *Sub) Close() error { return s.conn.Close() }
