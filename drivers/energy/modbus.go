package energy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"go.bug.st/serial"
)

// Function codes used (Modbus Application Protocol v1.1b3, section 6).
const (
	fnReadHolding = 0x03
	fnReadInput   = 0x04
	maxRegs       = 125 // registers per read request (section 6.3)
)

// crc16 is CRC-16/MODBUS (Modbus over Serial Line v1.02, section 6.2.2):
// reflected polynomial 0xA001, initial value 0xFFFF, sent low byte first.
func crc16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for i := 0; i < 8; i++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// ExceptionError is a Modbus exception response (section 7).
type ExceptionError struct {
	Function, Code byte
}

func (e *ExceptionError) Error() string {
	names := map[byte]string{1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "slave device failure", 6: "slave device busy", 0xB: "gateway target failed to respond"}
	return fmt.Sprintf("energy: modbus exception %d (%s) to function %d", e.Code, names[e.Code], e.Function)
}

// Is makes errors.Is(err, ErrException) true.
func (e *ExceptionError) Is(target error) bool { return target == ErrException }

func readPDU(fn byte, addr, qty uint16) []byte {
	return []byte{fn, byte(addr >> 8), byte(addr), byte(qty >> 8), byte(qty)}
}

// decodeResponse checks a response PDU to a read of qty registers with
// function fn and returns the registers.
func decodeResponse(fn byte, qty uint16, pdu []byte) ([]uint16, error) {
	if len(pdu) == 2 && pdu[0] == fn|0x80 {
		return nil, &ExceptionError{Function: fn, Code: pdu[1]}
	}
	if len(pdu) < 2 || pdu[0] != fn || int(pdu[1]) != 2*int(qty) || len(pdu) != 2+2*int(qty) {
		return nil, fmt.Errorf("energy: response % x to function %d for %d registers: %w", head(pdu), fn, qty, ErrMalformed)
	}
	regs := make([]uint16, qty)
	for i := range regs {
		regs[i] = binary.BigEndian.Uint16(pdu[2+2*i:])
	}
	return regs, nil
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }

// rtuDecode checks an RTU frame (slave address, PDU, CRC low byte first)
// from slave and returns its PDU.
func rtuDecode(slave byte, frame []byte) ([]byte, error) {
	if len(frame) < 4 {
		return nil, fmt.Errorf("energy: rtu frame of %d bytes: %w", len(frame), ErrMalformed)
	}
	n := len(frame) - 2
	if crc16(frame[:n]) != binary.LittleEndian.Uint16(frame[n:]) {
		return nil, fmt.Errorf("energy: rtu frame: %w", ErrCRC)
	}
	if frame[0] != slave {
		return nil, fmt.Errorf("energy: rtu frame from slave %d, asked %d: %w", frame[0], slave, ErrMalformed)
	}
	return frame[1:n], nil
}

// rtuFrame wraps a PDU for slave.
func rtuFrame(slave byte, pdu []byte) []byte {
	f := append([]byte{slave}, pdu...)
	return binary.LittleEndian.AppendUint16(f, crc16(f))
}

// transport reads registers from one slave.
type transport interface {
	read(ctx context.Context, fn byte, addr, qty uint16) ([]uint16, error)
	close() error
}

// rtu is Modbus RTU on a serial port (RS-485 adapter).
type rtu struct {
	port    serial.Port
	slave   byte
	timeout time.Duration
	// gap is 3.5 character times (Modbus over Serial Line 2.5.1.1), at
	// least 1.75 ms above 19200 baud: the silence that ends a frame.
	gap time.Duration
}

func (r *rtu) close() error { return r.port.Close() }

func (r *rtu) read(ctx context.Context, fn byte, addr, qty uint16) ([]uint16, error) {
	if err := r.port.ResetInputBuffer(); err != nil {
		return nil, fmt.Errorf("energy: flush: %w", err)
	}
	if _, err := r.port.Write(rtuFrame(r.slave, readPDU(fn, addr, qty))); err != nil {
		return nil, fmt.Errorf("energy: write: %w", err)
	}
	// An exception is 5 bytes, a response 5 + 2·qty; the third byte says
	// which.
	frame := make([]byte, 0, 5+2*int(qty))
	want := 5
	deadline := time.Now().Add(r.timeout)
	var buf [256]byte
	for len(frame) < want {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			if len(frame) > 0 {
				return nil, fmt.Errorf("energy: rtu frame cut short after %d of %d bytes: %w", len(frame), want, ErrTimeout)
			}
			return nil, fmt.Errorf("energy: rtu read: %w", ErrTimeout)
		}
		if err := r.port.SetReadTimeout(min(left, 100*time.Millisecond)); err != nil {
			return nil, err
		}
		n, err := r.port.Read(buf[:want-len(frame)])
		if err != nil {
			return nil, fmt.Errorf("energy: read: %w", err)
		}
		frame = append(frame, buf[:n]...)
		if len(frame) >= 3 && want == 5 && frame[1] == fn {
			want = 5 + int(frame[2])
		}
	}
	pdu, err := rtuDecode(r.slave, frame)
	if err != nil {
		// Let the rest of a garbled frame pass before the next request.
		time.Sleep(r.gap)
		return nil, err
	}
	time.Sleep(r.gap)
	return decodeResponse(fn, qty, pdu)
}

// tcp is Modbus TCP (Modbus Messaging on TCP/IP v1.0b): an MBAP header of
// transaction id, protocol 0, length and unit id before each PDU.
type tcp struct {
	conn    net.Conn
	unit    byte
	tid     uint16
	timeout time.Duration
}

func (t *tcp) close() error { return t.conn.Close() }

func (t *tcp) read(ctx context.Context, fn byte, addr, qty uint16) ([]uint16, error) {
	t.tid++
	pdu := readPDU(fn, addr, qty)
	req := binary.BigEndian.AppendUint16(nil, t.tid)
	req = binary.BigEndian.AppendUint16(req, 0)
	req = binary.BigEndian.AppendUint16(req, uint16(len(pdu)+1))
	req = append(append(req, t.unit), pdu...)
	dl := time.Now().Add(t.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	t.conn.SetDeadline(dl)
	if _, err := t.conn.Write(req); err != nil {
		return nil, netErr("write", err)
	}
	var hdr [7]byte
	if _, err := io.ReadFull(t.conn, hdr[:]); err != nil {
		return nil, netErr("read", err)
	}
	n := int(binary.BigEndian.Uint16(hdr[4:]))
	if binary.BigEndian.Uint16(hdr[:]) != t.tid || hdr[2] != 0 || hdr[3] != 0 || n < 2 || n > 254 {
		return nil, fmt.Errorf("energy: mbap header % x for transaction %d: %w", hdr, t.tid, ErrMalformed)
	}
	body := make([]byte, n-1)
	if _, err := io.ReadFull(t.conn, body); err != nil {
		return nil, netErr("read", err)
	}
	return decodeResponse(fn, qty, body)
}

func netErr(op string, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("energy: %s: %w", op, ErrTimeout)
	}
	return fmt.Errorf("energy: %s: %w", op, err)
}
