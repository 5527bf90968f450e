package gnss

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	// A Probe that started before Run notices d.running within one read
	// timeout and lets go of the port.
	d.portMu.Lock()
	defer d.portMu.Unlock()
	port, err := d.openPort()
	d.mu.Lock()
	d.stats.OpenError = ""
	if err != nil {
		d.stats.OpenError = err.Error()
	}
	d.mu.Unlock()
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
	asm.NoChecksum, asm.DateFloor, asm.DateCeiling = d.o.NoChecksum, d.o.DateFloor, d.o.DateCeiling
	dec := newDecoder(d.o.UBX, asm, func(f drivers.Fix, at time.Time) {
		out = append(out, epochOut{f, at})
	})
	// Keep the counters across reconnects: they describe the receiver.
	dec.counts = d.Stats().Counts
	d.mu.Lock()
	early := d.handoff
	if time.Since(d.handoffAt) > probeWindow {
		early = nil // an old probe's bytes are history, not this epoch
	}
	d.handoff = nil
	d.mu.Unlock()
	if len(early) > 0 { // what a start-up probe read before Run began
		dec.write(early, d.o.Now())
	}

	buf := make([]byte, 4096)
	for ctx.Err() == nil {
		n, err := safeRead(port, buf)
		now := d.o.Now()
		if n > 0 {
			*healthy = true
			dec.write(buf[:n], now)
		} else if err == nil {
			dec.quiet(now)
		}
		if err != nil {
			// Unplugged (EIO, or the library's "port closed" on a
			// zero-length read): hand on what is complete and reconnect.
			dec.flush(now)
		}
		if derr := d.deliver(ctx, emit, out, &dec.counts, dec.last); derr != nil {
			return derr
		}
		out, dec.last = out[:0], ""
		if err != nil {
			return fmt.Errorf("gnss: read %s: %w", d.o.Device, err)
		}
	}
	return nil
}

// maxHandoff bounds what a probe keeps for the session: 3 s at 9600 baud.
const maxHandoff = 4096

// probeWindow is how long Probe listens for one valid sentence: receivers
// print at least once a second.
const probeWindow = 3 * time.Second

// probeSerial reports Skipped when the device node is missing, Failed when
// it cannot be opened or carries nothing that decodes (wrong baud rate, wrong
// port, no checksums), and Loaded once one valid sentence or UBX frame
// arrives. It is for a Dev that is not running (doctor with the daemon
// down); if Run starts meanwhile, it lets go of the port and judges from the
// session instead.
func (d *Dev) probeSerial(ctx context.Context) (drivers.Probe, error) {
	if _, err := os.Stat(d.o.Device); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return drivers.Skipped, fmt.Errorf("gnss: probe: %w at %s: check the cable or the path", ErrNoDevice, d.o.Device)
		}
		return drivers.Failed, d.openError(err)
	}
	if !d.portMu.TryLock() {
		return d.probeSession(ctx)
	}
	locked := true
	defer func() {
		if locked {
			d.portMu.Unlock()
		}
	}()
	port, err := d.openPort()
	if err != nil {
		var pe *serial.PortError
		if errors.As(err, &pe) && pe.Code() == serial.PortBusy || errors.Is(err, syscall.EBUSY) {
			return drivers.Failed, fmt.Errorf("gnss: probe %s: the port is in use by another program: stop it (is the daemon running? then see `edge-agent status`), or use gpsd as the source", d.o.Device)
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
	asm.NoChecksum = d.o.NoChecksum
	dec := newDecoder(d.o.UBX, asm, func(drivers.Fix, time.Time) {})
	deadline := time.Now().Add(probeWindow)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	buf := make([]byte, 1024)
	var read []byte // handed to a session that starts right after
	defer func() {
		if read != nil {
			d.mu.Lock()
			d.handoff, d.handoffAt = read, time.Now()
			d.mu.Unlock()
		}
	}()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if d.running.Load() {
			port.Close()
			d.mu.Lock()
			d.handoff, d.handoffAt = read, time.Now()
			read = nil
			d.mu.Unlock()
			d.portMu.Unlock()
			locked = false
			return d.probeSession(ctx)
		}
		n, err := safeRead(port, buf)
		if err != nil {
			return drivers.Failed, fmt.Errorf("gnss: probe: read %s: %w", d.o.Device, err)
		}
		if len(read)+n <= maxHandoff {
			read = append(read, buf[:n]...)
		}
		dec.write(buf[:n], time.Now())
		if v, err := d.verdict(dec.counts, false); v == drivers.Loaded {
			return v, err
		}
	}
	return d.verdict(dec.counts, true)
}

// probeSession waits up to probeWindow for the running session to decode
// something, and judges from its counters.
func (d *Dev) probeSession(ctx context.Context) (drivers.Probe, error) {
	deadline := time.Now().Add(probeWindow)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		st := d.Stats()
		if st.OpenError != "" {
			if strings.Contains(st.OpenError, ErrNoDevice.Error()) {
				return drivers.Skipped, errors.New(st.OpenError)
			}
			return drivers.Failed, errors.New(st.OpenError)
		}
		final := !time.Now().Before(deadline) || ctx.Err() != nil
		if v, err := d.verdict(st.Counts, final); v == drivers.Loaded || final {
			return v, err
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// verdict judges a receiver from what was read of it. Before the window
// has passed (final false) only Loaded is decisive.
func (d *Dev) verdict(c Counts, final bool) (drivers.Probe, error) {
	if c.Sentences > 0 || c.UBXFrames > 0 {
		return drivers.Loaded, nil
	}
	if !final {
		return drivers.Failed, nil
	}
	why := fmt.Sprintf("%d bytes but no valid NMEA at %d baud: check the baud rate", c.Bytes, d.o.Baud)
	switch {
	case c.UBXOther > 0 && !d.o.UBX:
		why = "the receiver speaks u-blox UBX, not NMEA: set ubx = true"
	case c.UBXOther > 0:
		why = "UBX frames, but none of NAV-PVT, NAV-SOL, NAV-POSLLH: enable one of them in the receiver (u-center, or UBX-CFG-MSG)"
	case c.NoChecksum > 0:
		why = "NMEA sentences without checksums: if the receiver never sends them, set checksum = \"optional\""
	case c.Bytes == 0:
		why = "the receiver sent nothing in " + probeWindow.String() + ": check its power and TX wiring"
	case c.Invalid > 0 || c.BadChecksum > 0 && c.Garbled == 0:
		why = "sentences arrive but none is usable (bad checksums or impossible values): check the receiver's output settings"
	}
	return drivers.Failed, fmt.Errorf("gnss: probe %s: %s", d.o.Device, why)
}
