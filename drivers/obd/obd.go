// Package obd reads a car's OBD-II port through an ELM327-compatible adapter
// on a serial port (USB, or Bluetooth bound to /dev/rfcommN) and emits
// vehicle.obd samples, the VIN once per boot (vehicle.vin) and the stored
// trouble codes (vehicle.dtc).
//
// The adapter is driven as the ELM327 datasheet describes: AT Z resets it,
// AT E0/L0/S0/H0 turn off echo, line feeds, spaces and headers, AT SP 0 lets
// it search for the car's protocol on the first request, and AT DPN says
// which one it found. Clones of the ELM327 get much of this wrong, so every
// reply goes through one parser that tolerates echo left on, SEARCHING...,
// missing > prompts and unknown AT commands, and counts each in Stats.Quirks.
//
// A car with the ignition off answers nothing (UNABLE TO CONNECT, BUS INIT:
// ...ERROR, NO DATA to everything) and a sleeping adapter wakes on the next
// byte: both are the normal state "no_vehicle", polled again every
// Opts.IdleRetry, never a failure.
//
// Concurrency: Run must be called at most once at a time. Name, Stats and
// Probe are safe from other goroutines; Probe opens the port, so doctor
// calls it only with the daemon down.
package obd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.bug.st/serial"

	"github.com/edge-agent/edge-agent/drivers"
)

// States in Stats.State.
const (
	StateDisconnected = "disconnected" // the port is closed or the adapter does not answer
	StateNoVehicle    = "no_vehicle"   // the adapter answers, the car does not: ignition off
	StateOK           = "ok"           // samples are flowing
)

// Opts configures a Dev. Zero fields take DefaultOpts' values.
type Opts struct {
	Device string // serial port, e.g. /dev/ttyUSB0 or /dev/rfcomm0
	// Bauds are tried in order until AT Z answers: 38400 is the ELM327's
	// factory rate, many clones ship at 9600.
	Bauds     []int
	PIDs      []string      // among PIDNames(), read in this order
	Interval  time.Duration // time between samples
	IdleRetry time.Duration // time between tries while the car is off
	// DTCInterval is the time between mode 03 reads; 0 reads them only
	// once per connection.
	DTCInterval time.Duration
	NoVIN       bool // do not read the VIN (mode 09 PID 02), otherwise read once per boot
	VINHash     bool // sign only the VIN's SHA-256
	// Timeout bounds one reply; the first request after AT SP 0 may search
	// every protocol, which takes seconds, so it gets SearchTimeout.
	Timeout       time.Duration
	SearchTimeout time.Duration
	Logger        *slog.Logger
	Now           func() time.Time
}

// DefaultOpts returns the options used for zero fields.
func DefaultOpts() Opts {
	return Opts{
		Device: "/dev/ttyUSB0", Bauds: []int{38400, 9600},
		PIDs:     []string{PIDSpeed, PIDRPM, PIDCoolant, PIDFuel, PIDOdometer},
		Interval: 2 * time.Second, IdleRetry: 15 * time.Second, DTCInterval: 10 * time.Minute,
		Timeout: 2 * time.Second, SearchTimeout: 15 * time.Second,
		Logger: slog.New(slog.DiscardHandler), Now: time.Now,
	}
}

// Stats is the driver's state for status and doctor.
type Stats struct {
	State     string
	Baud      int    // the rate the adapter answered at; 0 before
	Adapter   string // its AT Z banner, e.g. "ELM327 v1.5"
	Protocol  string // AT DPN
	Offered   []string
	Samples   uint64
	LastAt    time.Time
	Last      drivers.VehicleOBD
	Reconnect uint64 // sessions started after the first
	// Quirks counts each clone misbehaviour and bus message by name
	// (echo, searching, no_prompt, no_data, unknown_command, …).
	Quirks    map[string]uint64
	LastError string
}

// Dev is one configured adapter.
type Dev struct {
	name string
	o    Opts
	pids []pid
	log  *slog.Logger

	running atomic.Bool
	first   *drivers.Outcome // the first session's verdict, for Probe while running

	mu      sync.Mutex
	st      Stats
	vinDone bool
}

var (
	_ drivers.Driver       = (*Dev)(nil)
	_ drivers.Prober       = (*Dev)(nil)
	_ drivers.DeviceLister = (*Dev)(nil)
)

// New returns a Dev; o may be nil for the defaults.
func New(name string, o *Opts) (*Dev, error) {
	def := DefaultOpts()
	opts := drivers.OptsOf(o)
	drivers.SetDefault(&opts.Device, def.Device)
	if len(opts.Bauds) == 0 {
		opts.Bauds = def.Bauds
	}
	if opts.PIDs == nil {
		opts.PIDs = def.PIDs
	}
	for _, p := range []*time.Duration{&opts.Interval, &opts.IdleRetry, &opts.Timeout, &opts.SearchTimeout} {
		if *p < 0 {
			return nil, fmt.Errorf("obd: new %q: negative duration %v: %w", name, *p, ErrInvalidOption)
		}
	}
	drivers.SetDefault(&opts.Interval, def.Interval)
	drivers.SetDefault(&opts.IdleRetry, def.IdleRetry)
	drivers.SetDefault(&opts.Timeout, def.Timeout)
	drivers.SetDefault(&opts.SearchTimeout, def.SearchTimeout)
	drivers.SetDefault(&opts.Logger, def.Logger)
	if opts.Now == nil {
		opts.Now = def.Now
	}
	ps, err := lookupPIDs(opts.PIDs)
	if err != nil {
		return nil, err
	}
	return &Dev{name: name, o: opts, pids: ps, log: opts.Logger.With("component", "obd", "driver", name), first: drivers.NewOutcome(),
		st: Stats{State: StateDisconnected, Quirks: map[string]uint64{}}}, nil
}

// Name implements drivers.Driver.
func (d *Dev) Name() string { return d.name }

// Devices implements drivers.DeviceLister: the adapter's serial port.
func (d *Dev) Devices() []drivers.Device {
	return []drivers.Device{{Kind: drivers.DeviceNode, Path: d.o.Device, What: "OBD-II adapter (ELM327, serial)"}}
}

// Stats returns a copy of the driver's state.
func (d *Dev) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.st
	s.Quirks = make(map[string]uint64, len(d.st.Quirks))
	for k, v := range d.st.Quirks {
		s.Quirks[k] = v
	}
	s.Offered = append([]string(nil), d.st.Offered...)
	return s
}

func (d *Dev) quirk(name string) {
	d.mu.Lock()
	d.st.Quirks[name]++
	d.mu.Unlock()
}

func (d *Dev) setState(state string, err error) {
	d.mu.Lock()
	d.st.State = state
	if err != nil {
		d.st.LastError = err.Error()
	}
	d.mu.Unlock()
}

// Probe implements drivers.Prober: it opens the port and asks AT Z (at each
// baud rate), nothing that touches the car. While Run holds the port it
// waits for Run's first connection instead.
func (d *Dev) Probe(ctx context.Context) (drivers.Probe, error) {
	if d.running.Load() {
		return d.first.Wait(ctx)
	}
	a, err := d.connect(ctx)
	if err != nil {
		return probeOutcome(err), err
	}
	a.close()
	return drivers.Loaded, nil
}

func probeOutcome(err error) drivers.Probe { return drivers.ProbeResult(err, ErrNoDevice) }

// Run implements drivers.Driver. An unplugged or silent adapter is retried
// every IdleRetry until ctx is done; Run returns only nil.
func (d *Dev) Run(ctx context.Context, emit drivers.Emit) error {
	d.running.Store(true)
	defer d.running.Store(false)
	first := true
	for {
		if !first {
			d.mu.Lock()
			d.st.Reconnect++
			d.mu.Unlock()
		}
		first = false
		err := d.session(ctx, emit)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errEmit) {
			return err
		}
		d.setState(StateDisconnected, err)
		d.log.Warn("adapter session ended; retrying", "err", err, "retry_in", d.o.IdleRetry)
		if !sleep(ctx, d.o.IdleRetry) {
			return nil
		}
	}
}

var errEmit = errors.New("emit")

func sleep(ctx context.Context, t time.Duration) bool {
	tm := time.NewTimer(t)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// adapter is an open port with an ELM327 behind it.
type adapter struct {
	d    *Dev
	port serial.Port
	buf  []byte
	can  bool
}

func (a *adapter) close() { a.port.Close() }

// connect opens the port and finds the baud rate at which AT Z answers with
// an ELM327 banner, then sets it up (datasheet "AT Commands").
func (d *Dev) connect(ctx context.Context) (*adapter, error) {
	var last error
	for i, baud := range d.o.Bauds {
		p, err := serial.Open(d.o.Device, &serial.Mode{BaudRate: baud})
		if err != nil {
			return nil, openError(d.o.Device, err)
		}
		a := &adapter{d: d, port: p}
		banner, err := a.reset(ctx)
		if err == nil {
			if i > 0 {
				d.quirk(quirkBaudChange)
			}
			d.mu.Lock()
			d.st.Baud, d.st.Adapter = baud, banner
			d.mu.Unlock()
			if err := a.setup(ctx); err != nil {
				p.Close()
				return nil, err
			}
			return a, nil
		}
		p.Close()
		last = err
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("obd: %s at %v baud: %w (%w): check the adapter's baud rate (38400 or 9600) and that it is an ELM327", d.o.Device, d.o.Bauds, ErrNoAdapter, last)
}

func openError(dev string, err error) error {
	var pe *serial.PortError
	if errors.As(err, &pe) && pe.Code() == serial.PermissionDenied || errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("obd: open %s: %w: add user edge-agent to group dialout", dev, ErrPermission)
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOENT) || errors.As(err, &pe) && pe.Code() == serial.PortNotFound {
		return fmt.Errorf("obd: open %s: %w: plug the adapter in (or bind the Bluetooth port)", dev, ErrNoDevice)
	}
	return fmt.Errorf("obd: open %s: %w", dev, err)
}

// reset sends AT Z and returns the banner. A sleeping adapter wakes on the
// first byte and may miss it, so a lone CR goes first (the datasheet's
// "any character" wake-up) and its answer is thrown away.
func (a *adapter) reset(ctx context.Context) (string, error) {
	a.port.ResetInputBuffer()
	if _, err := a.port.Write([]byte("\r")); err != nil {
		return "", fmt.Errorf("obd: write: %w", err)
	}
	_, _, _ = a.readPrompt(ctx, 200*time.Millisecond) // the wake-up's answer, if any, is noise
	r, err := a.cmd(ctx, "ATZ", a.d.o.Timeout)
	if err != nil {
		return "", err
	}
	for _, l := range r.lines {
		if strings.Contains(strings.ToUpper(l), "ELM") {
			return l, nil
		}
	}
	return "", fmt.Errorf("obd: AT Z answered %q: %w", r.lines, ErrMalformed)
}

// setup turns off echo, line feeds, spaces and headers and selects protocol
// auto-detection. Clones that lack S0 or H0 answer "?": counted, harmless,
// since the parser reads spaced and unspaced hex alike.
func (a *adapter) setup(ctx context.Context) error {
	for _, c := range []string{"ATE0", "ATL0", "ATS0", "ATH0", "ATSP0"} {
		r, err := a.cmd(ctx, c, a.d.o.Timeout)
		if err != nil {
			return err
		}
		if r.status != "" && r.status != statusUnknown {
			return fmt.Errorf("obd: %s: adapter says %s: %w", c, r.status, ErrMalformed)
		}
	}
	return nil
}

// cmd sends one command and parses the reply, counting quirks.
func (a *adapter) cmd(ctx context.Context, c string, timeout time.Duration) (reply, error) {
	if _, err := a.port.Write([]byte(c + "\r")); err != nil {
		return reply{}, fmt.Errorf("obd: write %s: %w", c, err)
	}
	raw, prompt, err := a.readPrompt(ctx, timeout)
	if err != nil {
		return reply{}, fmt.Errorf("obd: %s: %w", c, err)
	}
	r, err := parseReply(c, raw)
	if err != nil {
		a.d.quirk(quirkGarbage)
		return r, err
	}
	if !prompt {
		a.d.quirk(quirkNoPrompt)
	}
	if r.echo && c != "ATZ" && c != "ATE0" { // echo is on until AT E0 has been read
		a.d.quirk(quirkEcho)
	}
	if r.searching {
		a.d.quirk(quirkSearching)
	}
	if r.status != "" {
		a.d.quirk(r.status)
	}
	return r, nil
}

// readPrompt reads until the > prompt. Some clones never print it: a reply
// that ended with CR and then went quiet for a fifth of the timeout is
// taken as complete (prompt false), as is whatever arrived by the deadline.
func (a *adapter) readPrompt(ctx context.Context, timeout time.Duration) (raw []byte, prompt bool, err error) {
	deadline := time.Now().Add(timeout)
	quiet := max(timeout/5, 50*time.Millisecond)
	if err := a.port.SetReadTimeout(min(quiet, 100*time.Millisecond)); err != nil {
		return nil, false, err
	}
	a.buf = a.buf[:0]
	var chunk [256]byte
	lastByte := time.Now()
	for {
		if i := bytes.IndexByte(a.buf, '>'); i >= 0 {
			return a.buf[:i], true, nil
		}
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		now := time.Now()
		if len(a.buf) > 0 && (a.buf[len(a.buf)-1] == '\r' && now.Sub(lastByte) >= quiet || now.After(deadline)) {
			return a.buf, false, nil
		}
		if now.After(deadline) {
			a.d.quirk(quirkTimeout)
			return nil, false, ErrTimeout
		}
		n, err := a.port.Read(chunk[:])
		if err != nil {
			return nil, false, fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			continue
		}
		if len(a.buf)+n > 4096 {
			return a.buf, false, nil // the parser says what it is
		}
		a.buf = append(a.buf, chunk[:n]...)
		lastByte = time.Now()
	}
}

// isReadErr reports whether err means the port itself failed (unplugged).
func isReadErr(err error) bool {
	var pe *serial.PortError
	return errors.As(err, &pe) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENXIO)
}

// session is one open adapter: it waits for the car, learns what it offers,
// then samples until the port fails or ctx is done.
func (d *Dev) session(ctx context.Context, emit drivers.Emit) error {
	a, err := d.connect(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.first.Set(probeOutcome(err), err)
		}
		return err
	}
	defer a.close()
	d.first.Set(drivers.Loaded, nil)
	d.log.Info("adapter ready", "device", d.o.Device, "baud", d.Stats().Baud, "adapter", d.Stats().Adapter)
	for ctx.Err() == nil {
		offered, err := a.discover(ctx)
		if err != nil {
			return err
		}
		if offered == nil {
			d.setState(StateNoVehicle, nil)
			if !sleep(ctx, d.o.IdleRetry) {
				return nil
			}
			continue
		}
		if err := a.sampleLoop(ctx, emit, offered); err != nil {
			return err
		}
	}
	return nil
}

// discover sends 01 00, which makes the adapter search for the protocol, and
// walks the supported-PID bitmaps. It returns nil (and no error) when the
// car does not answer.
func (a *adapter) discover(ctx context.Context) (*supported, error) {
	var s supported
	for base := 0; base <= 0xE0; base += 0x20 {
		timeout := a.d.o.Timeout
		if base == 0 {
			timeout = a.d.o.SearchTimeout
		}
		r, err := a.cmd(ctx, fmt.Sprintf("01%02X", base), timeout)
		if err != nil {
			if errors.Is(err, ErrGarbage) || errors.Is(err, ErrTimeout) && base > 0 {
				break // keep what the earlier bitmaps said
			}
			return nil, err
		}
		fs, ferr := r.frames()
		bm, ok := mode01(fs, byte(base))
		if ferr != nil || !ok || r.status != "" {
			if base == 0 {
				return nil, nil // ignition off, or the car is not there
			}
			break
		}
		if !s.add(byte(base), bm) {
			break
		}
	}
	if r, err := a.cmd(ctx, "ATDPN", a.d.o.Timeout); err == nil && len(r.lines) > 0 {
		a.can = isCAN(r.lines[0])
		a.d.mu.Lock()
		a.d.st.Protocol = r.lines[0]
		a.d.mu.Unlock()
	}
	var offered []string
	for _, p := range a.d.pids {
		if s[p.num] {
			offered = append(offered, p.name)
		}
	}
	a.d.mu.Lock()
	a.d.st.Offered = offered
	a.d.mu.Unlock()
	return &s, nil
}

// maxSilent is how many samples in a row may come back empty before the
// car counts as switched off and the protocol is searched again.
const maxSilent = 3

func (a *adapter) sampleLoop(ctx context.Context, emit drivers.Emit, s *supported) error {
	d := a.d
	if !d.o.NoVIN && !d.vinDone {
		if err := a.readVIN(ctx, emit); err != nil {
			return err
		}
	}
	if err := a.readDTCs(ctx, emit); err != nil {
		return err
	}
	lastDTC := time.Now()
	silent := 0
	next := time.Now()
	for {
		if wait := time.Until(next); wait > 0 && !sleep(ctx, wait) {
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		next = next.Add(d.o.Interval)
		if time.Until(next) < -d.o.Interval {
			next = time.Now() // do not burst after a long stall
		}
		d.mu.Lock()
		proto := d.st.Protocol
		d.mu.Unlock()
		sample := drivers.VehicleOBD{Protocol: proto}
		got := 0
		for _, p := range d.pids {
			if !s[p.num] {
				continue
			}
			r, err := a.cmd(ctx, fmt.Sprintf("01%02X", p.num), d.o.Timeout)
			if err != nil {
				if isReadErr(err) || ctx.Err() != nil {
					return err
				}
				continue // garbage or a timeout on one PID: counted; try the rest
			}
			fs, err := r.frames()
			if err != nil {
				continue
			}
			if v, ok := mode01(fs, p.num); ok && len(v) >= p.bytes {
				p.set(&sample, v)
				got++
			}
		}
		if got == 0 {
			silent++
			if silent >= maxSilent {
				d.setState(StateNoVehicle, nil)
				return nil // back to discover: the car went off
			}
			continue
		}
		silent = 0
		at := d.o.Now()
		d.mu.Lock()
		d.st.State, d.st.Samples, d.st.LastAt, d.st.Last = StateOK, d.st.Samples+1, at, sample
		d.mu.Unlock()
		if err := d.emit(ctx, emit, drivers.KindVehicleOBD, at, sample); err != nil {
			return err
		}
		if d.o.DTCInterval > 0 && time.Since(lastDTC) >= d.o.DTCInterval {
			lastDTC = time.Now()
			if err := a.readDTCs(ctx, emit); err != nil {
				return err
			}
		}
	}
}

func (d *Dev) emit(ctx context.Context, emit drivers.Emit, kind string, at time.Time, data any) error {
	if err := emit(ctx, drivers.Observation{Kind: kind, Source: d.name, Time: at, Data: data}); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("obd: %w: %w", errEmit, err)
	}
	return nil
}

// readVIN emits the VIN, or only its hash. A car that does not support mode
// 09 (before 2005 in the EU) is logged once and not asked again.
func (a *adapter) readVIN(ctx context.Context, emit drivers.Emit) error {
	d := a.d
	r, err := a.cmd(ctx, "0902", d.o.Timeout)
	if err != nil {
		if isReadErr(err) || ctx.Err() != nil {
			return err
		}
		return nil // try again next session
	}
	d.vinDone = true
	fs, err := r.frames()
	var vin string
	if err == nil {
		vin, err = parseVIN(fs)
	}
	if err != nil || r.status != "" {
		d.log.Info("the car does not report its VIN", "status", r.status, "err", err)
		return nil
	}
	rec := drivers.VehicleVIN{VIN: vin}
	if d.o.VINHash {
		h := sha256.Sum256([]byte(vin))
		rec = drivers.VehicleVIN{SHA256: h[:]}
	}
	return d.emit(ctx, emit, drivers.KindVehicleVIN, d.o.Now(), rec)
}

func (a *adapter) readDTCs(ctx context.Context, emit drivers.Emit) error {
	d := a.d
	r, err := a.cmd(ctx, "03", d.o.Timeout)
	if err != nil {
		if isReadErr(err) || ctx.Err() != nil {
			return err
		}
		return nil
	}
	var codes []string
	if r.status == statusNoData {
		codes = []string{} // some ECUs say NO DATA when none are stored
	} else {
		fs, err := r.frames()
		if err == nil {
			codes, err = parseDTCs(fs, a.can)
		}
		if err != nil || r.status != "" {
			d.log.Info("unreadable trouble codes", "status", r.status, "err", err)
			return nil
		}
	}
	return d.emit(ctx, emit, drivers.KindVehicleDTC, d.o.Now(), drivers.VehicleDTC{Codes: codes})
}
