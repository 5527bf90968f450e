package gnss

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.bug.st/serial"

	"github.com/edge-agent/edge-agent/drivers"
)

// readTimeout bounds each port read. go.bug.st/serial returns (0, nil) when
// it expires, which would make bufio.Scanner give up, so the loop reads raw
// chunks and treats an empty read as "the receiver has gone quiet": the end
// of an epoch's burst, time to flush it instead of waiting for the next
// epoch's first sentence.
const readTimeout = 100 * time.Millisecond

// maxSelectFD is FD_SETSIZE: go.bug.st/serial select(2)s on the port and on a
// signalling pipe, and panics in FDSet.Set for descriptors at or above it.
const maxSelectFD = 1024

// openPort opens the serial device and checks that the library can select on
// it. The caller closes the port.
func (d *Dev) openPort() (serial.Port, error) {
	p, err := serial.Open(d.o.Device, &serial.Mode{BaudRate: d.o.Baud})
	if err != nil {
		return nil, d.openError(err)
	}
	if fd, ok := highestFD(d.o.Device); ok && fd >= maxSelectFD-2 {
		// The signalling pipe is opened right after the port: a port at
		// 1022 or 1023 leaves it at or above 1024.
		p.Close()
		return nil, fmt.Errorf("gnss: open %s: %w (fd %d): start the GNSS driver before the network opens many sockets", d.o.Device, ErrHighFD, fd)
	}
	return p, nil
}

// openError turns the library's errors into ours, with what to do next.
func (d *Dev) openError(err error) error {
	var pe *serial.PortError
	if errors.As(err, &pe) && pe.Code() == serial.PermissionDenied || errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("gnss: open %s: %w: add user edge-agent to group dialout", d.o.Device, ErrPermission)
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOENT) || errors.As(err, &pe) && pe.Code() == serial.PortNotFound {
		return fmt.Errorf("gnss: open %s: %w at %s: check the cable or the path", d.o.Device, ErrNoDevice, d.o.Device)
	}
	return fmt.Errorf("gnss: open %s: %w", d.o.Device, err)
}

// highestFD finds the descriptor this process holds on path, through
// /proc/self/fd (Linux). ok is false where that is not available.
func highestFD(path string) (int, bool) {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return 0, false
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, false
	}
	best, ok := -1, false
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == target && fd > best {
			best, ok = fd, true
		}
	}
	return best, ok
}

// safeRead reads from the port, turning the library's select panic on a
// high descriptor into an error instead of a crashed daemon.
func safeRead(p serial.Port, buf []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, fmt.Errorf("gnss: read: %w: %v", ErrHighFD, r)
		}
	}()
	return p.Read(buf)
}

func (d *Dev) serialSession(ctx context.Context, emit drivers.Emit, healthy *bool) error {
	port, err := d.openPort()
	if err != nil {
		return err
	}
	defer port.Close()
	if err := port.SetReadTimeout(readTimeout); err != nil {
		return fmt.Errorf("gnss: set read timeout on %s: %w", d.o.Device, err)
	}
	d.connected()
	d.log.Info("serial port open", "device", d.o.Device, "baud", d.o.Baud, "ubx", d.o.UBX)

	var out []epochOut
	asm := NewAssembler()
	asm.Now = d.o.Now
	dec := newDecoder(d.o.UBX, asm, func(f drivers.Fix, at time.Time) {
		out = append(out, epochOut{f, at})
	})
	// Keep the counters across reconnects: they describe the receiver.
	dec.counts = d.Stats().Counts

	buf := make([]byte, 4096)
	for ctx.Err() == nil {
		n, err := safeRead(port, buf)
		now := d.o.Now()
		if n > 0 {
			*healthy = true
			dec.write(buf[:n], now)
		} else if err == nil {
			dec.flush(now)
		}
		if err != nil {
			// Unplugged (EIO, or the library's "port closed" on a
			// zero-length read): hand on what is complete and reconnect.
			dec.flush(now)
		}
		if derr := d.deliver(ctx, emit, out, &dec.counts); derr != nil {
			return derr
		}
		out = out[:0]
		if err != nil {
			return fmt.Errorf("gnss: read %s: %w", d.o.Device, err)
		}
	}
	return nil
}

// probeWindow is how long Probe listens for one valid sentence: receivers
// print at least once a second.
const probeWindow = 3 * time.Second

// probeSerial reports Skipped when the device node is missing, Failed when
// it cannot be opened or carries nothing that decodes (wrong baud rate, wrong
// port), and Loaded once one valid sentence or NAV-PVT frame arrives. A port
// held by the running daemon is Loaded too: it exists, and it is in use.
func (d *Dev) probeSerial(ctx context.Context) (drivers.Probe, error) {
	if _, err := os.Stat(d.o.Device); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return drivers.Skipped, fmt.Errorf("gnss: probe: %w at %s: check the cable or the path", ErrNoDevice, d.o.Device)
		}
		return drivers.Failed, d.openError(err)
	}
	port, err := d.openPort()
	if err != nil {
		var pe *serial.PortError
		if errors.As(err, &pe) && pe.Code() == serial.PortBusy || errors.Is(err, syscall.EBUSY) {
			return drivers.Loaded, nil
		}
		if errors.Is(err, ErrNoDevice) {
			return drivers.Skipped, err
		}
		return drivers.Failed, err
	}
	defer port.Close()
	if err := port.SetReadTimeout(readTimeout); err != nil {
		return drivers.Failed, fmt.Errorf("gnss: probe: set read timeout on %s: %w", d.o.Device, err)
	}
	asm := NewAssembler()
	dec := newDecoder(true, asm, func(drivers.Fix, time.Time) {})
	deadline := time.Now().Add(probeWindow)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	buf := make([]byte, 1024)
	var got int
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n, err := safeRead(port, buf)
		if err != nil {
			return drivers.Failed, fmt.Errorf("gnss: probe: read %s: %w", d.o.Device, err)
		}
		got += n
		dec.write(buf[:n], time.Now())
		if dec.counts.Sentences > 0 || dec.counts.UBXFrames > 0 {
			return drivers.Loaded, nil
		}
	}
	if got == 0 {
		return drivers.Failed, fmt.Errorf("gnss: probe %s: the receiver sent nothing in %v: check its power and TX wiring", d.o.Device, probeWindow)
	}
	return drivers.Failed, fmt.Errorf("gnss: probe %s: %d bytes but no valid NMEA at %d baud: check the baud rate", d.o.Device, got, d.o.Baud)
}
