// Package energy polls energy meters and solar inverters over Modbus (RTU on
// an RS-485 serial port, or TCP) and emits energy.sample observations:
// cumulative import and export energy, power, voltage, current, frequency.
//
// A profile names the register map: the Eastron SDM120 and SDM630 DIN-rail
// meters (input registers holding IEEE-754 floats), or any SunSpec device
// (holding registers from the "SunS" marker at the base address, models
// discovered along the chain, values with scale factors). The Modbus framing
// is our own and small: functions 3 and 4, CRC-16, exception responses.
//
// The cumulative counters are what networks pay on, so they are never
// corrected: a counter lower than the last poll, or higher by more than the
// rated power allows in the elapsed time, is signed as read and flagged.
//
// Concurrency: Run must be called at most once at a time. Name and Stats
// are safe from other goroutines; Probe opens the port or connection, so
// doctor calls it only with the daemon down.
package energy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.bug.st/serial"

	"github.com/edge-agent/edge-agent/drivers"
)

// Transports.
const (
	TransportRTU = "rtu"
	TransportTCP = "tcp"
)

// Opts configures a Dev. Zero fields take DefaultOpts' values.
type Opts struct {
	Transport string // rtu or tcp
	Device    string // rtu: the serial port, e.g. /dev/ttyUSB0
	Baud      int    // rtu
	Parity    string // rtu: none, even or odd
	StopBits  int    // rtu: 1 or 2
	Addr      string // tcp: host:port
	Slave     int    // slave id (rtu) or unit id (tcp), 1–247
	Profile   string // one of Profiles
	// SunSpecBase is where the "SunS" marker is looked for: 40000 (the
	// SunSpec default) or 50000.
	SunSpecBase int
	// MaxPowerW bounds how fast a cumulative counter may rise; 0 takes the
	// profile's rating.
	MaxPowerW float64
	Interval  time.Duration
	Timeout   time.Duration // one request's answer
	Logger    *slog.Logger
	Now       func() time.Time
}

// DefaultOpts returns the options used for zero fields.
func DefaultOpts() Opts {
	return Opts{Transport: TransportRTU, Device: "/dev/ttyUSB0", Baud: 9600, Parity: "none", StopBits: 1,
		Slave: 1, Profile: ProfileSDM630, SunSpecBase: 40000, Interval: 10 * time.Second, Timeout: time.Second,
		Logger: slog.New(slog.DiscardHandler), Now: time.Now}
}

// Stats is the driver's state for status and doctor.
type Stats struct {
	Connected bool
	Profile   string
	Model     uint16 // SunSpec model found
	Polls     uint64 // successful
	LastAt    time.Time
	Last      drivers.EnergySample
	// Errors counts failed polls by cause: timeout, crc, exception,
	// malformed, other.
	Errors map[string]uint64
	// Flags counts samples flagged import_back, export_back, import_jump,
	// export_jump.
	Flags     map[string]uint64
	LastError string
}

// Dev is one configured meter or inverter.
type Dev struct {
	name string
	o    Opts
	log  *slog.Logger

	running atomic.Bool
	first   *drivers.Outcome // the first poll's verdict, for Probe while running

	mu sync.Mutex
	st Stats
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
	drivers.SetDefault(&opts.Transport, def.Transport)
	drivers.SetDefault(&opts.Device, def.Device)
	drivers.SetDefault(&opts.Parity, def.Parity)
	drivers.SetDefault(&opts.Profile, def.Profile)
	drivers.SetDefault(&opts.Baud, def.Baud)
	drivers.SetDefault(&opts.StopBits, def.StopBits)
	drivers.SetDefault(&opts.Slave, def.Slave)
	drivers.SetDefault(&opts.SunSpecBase, def.SunSpecBase)
	drivers.SetDefault(&opts.Interval, def.Interval)
	drivers.SetDefault(&opts.Timeout, def.Timeout)
	drivers.SetDefault(&opts.Logger, def.Logger)
	if opts.Now == nil {
		opts.Now = def.Now
	}
	if opts.MaxPowerW == 0 {
		opts.MaxPowerW = ratedW[opts.Profile]
	}
	bad := func(what string, v any, hint string) error {
		return fmt.Errorf("energy: new %q: %s %v: %s: %w", name, what, v, hint, ErrInvalidOption)
	}
	switch {
	case opts.Transport != TransportRTU && opts.Transport != TransportTCP:
		return nil, bad("transport", opts.Transport, "use rtu or tcp")
	case !slices.Contains(Profiles, opts.Profile):
		return nil, bad("profile", opts.Profile, fmt.Sprintf("use one of %v", Profiles))
	case opts.Slave < 1 || opts.Slave > 247:
		return nil, bad("slave", opts.Slave, "use 1 to 247")
	case opts.Transport == TransportTCP && opts.Addr == "":
		return nil, bad("addr", `""`, "tcp needs host:port")
	case parity(opts.Parity) < 0:
		return nil, bad("parity", opts.Parity, "use none, even or odd")
	case opts.StopBits != 1 && opts.StopBits != 2:
		return nil, bad("stop_bits", opts.StopBits, "use 1 or 2")
	case opts.SunSpecBase != 40000 && opts.SunSpecBase != 50000:
		return nil, bad("sunspec_base", opts.SunSpecBase, "use 40000 or 50000")
	case opts.Interval < 0 || opts.Timeout < 0 || opts.MaxPowerW < 0:
		return nil, bad("interval, timeout or max_power_w", "", "must not be negative")
	}
	return &Dev{name: name, o: opts, log: opts.Logger.With("component", "energy", "driver", name), first: drivers.NewOutcome(),
		st: Stats{Profile: opts.Profile, Errors: map[string]uint64{}, Flags: map[string]uint64{}}}, nil
}

func parity(p string) serial.Parity {
	switch p {
	case "none":
		return serial.NoParity
	case "even":
		return serial.EvenParity
	case "odd":
		return serial.OddParity
	}
	return -1
}

// Name implements drivers.Driver.
func (d *Dev) Name() string { return d.name }

// Devices implements drivers.DeviceLister: the RS-485 adapter, or the
// Modbus TCP server.
func (d *Dev) Devices() []drivers.Device {
	if d.o.Transport == TransportTCP {
		return []drivers.Device{{Kind: drivers.DeviceTCP, Path: d.o.Addr, What: "modbus"}}
	}
	return []drivers.Device{{Kind: drivers.DeviceNode, Path: d.o.Device, What: "RS-485 adapter (Modbus RTU)"}}
}

// Stats returns a copy of the driver's state.
func (d *Dev) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.st
	s.Errors, s.Flags = maps(d.st.Errors), maps(d.st.Flags)
	return s
}

func maps(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// where names the device for errors: the port and line settings, or the
// address, and the slave id.
func (d *Dev) where() string {
	if d.o.Transport == TransportTCP {
		return fmt.Sprintf("%s unit %d", d.o.Addr, d.o.Slave)
	}
	return fmt.Sprintf("%s slave %d at %d baud parity %s", d.o.Device, d.o.Slave, d.o.Baud, d.o.Parity)
}

func (d *Dev) open(ctx context.Context) (transport, error) {
	if d.o.Transport == TransportTCP {
		var dl net.Dialer
		c, err := dl.DialContext(ctx, "tcp", d.o.Addr)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				return nil, fmt.Errorf("energy: dial %s: %w (connection refused): check the address and that Modbus TCP is enabled on the device", d.o.Addr, ErrNoDevice)
			}
			return nil, fmt.Errorf("energy: dial %s: %w", d.o.Addr, err)
		}
		return &tcp{conn: c, unit: byte(d.o.Slave), timeout: d.o.Timeout}, nil
	}
	sb := serial.OneStopBit
	if d.o.StopBits == 2 {
		sb = serial.TwoStopBits
	}
	p, err := serial.Open(d.o.Device, &serial.Mode{BaudRate: d.o.Baud, Parity: parity(d.o.Parity), StopBits: sb, DataBits: 8})
	if err != nil {
		var pe *serial.PortError
		switch {
		case errors.As(err, &pe) && pe.Code() == serial.PermissionDenied || errors.Is(err, fs.ErrPermission):
			return nil, fmt.Errorf("energy: open %s: %w: add user edge-agent to group dialout", d.o.Device, ErrPermission)
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOENT) || errors.As(err, &pe) && pe.Code() == serial.PortNotFound:
			return nil, fmt.Errorf("energy: open %s: %w: plug the RS-485 adapter in or fix the path", d.o.Device, ErrNoDevice)
		}
		return nil, fmt.Errorf("energy: open %s: %w", d.o.Device, err)
	}
	char := time.Duration(11) * time.Second / time.Duration(d.o.Baud) // start, 8 data, parity or stop, stop
	gap := max(char*7/2, 1750*time.Microsecond)
	return &rtu{port: p, slave: byte(d.o.Slave), timeout: d.o.Timeout, gap: gap}, nil
}

// hint is the next step for a poll error: what a timeout or a CRC error
// means on an RS-485 line.
func (d *Dev) hint(err error) error {
	switch {
	case errors.Is(err, ErrTimeout) && d.o.Transport == TransportRTU:
		return fmt.Errorf("%w from %s: check the slave id, baud rate and parity against the meter's menu, and swap the RS-485 A and B wires", err, d.where())
	case errors.Is(err, ErrTimeout):
		return fmt.Errorf("%w from %s: check the unit id (many gateways want 1 or 126)", err, d.where())
	case errors.Is(err, ErrCRC):
		return fmt.Errorf("%w from %s: check baud rate and parity, the cable's shield and the 120 Ω terminator", err, d.where())
	case errors.Is(err, ErrException):
		return fmt.Errorf("%w from %s: the device does not have these registers: check the profile", err, d.where())
	}
	return fmt.Errorf("%w (%s)", err, d.where())
}

func errKey(err error) string {
	switch {
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrCRC):
		return "crc"
	case errors.Is(err, ErrException):
		return "exception"
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrNotSunSpec):
		return "malformed"
	}
	return "other"
}

// Probe implements drivers.Prober: one poll. While Run holds the line it
// waits for Run's first poll instead: two masters on one bus collide.
func (d *Dev) Probe(ctx context.Context) (drivers.Probe, error) {
	if d.running.Load() {
		return d.first.Wait(ctx)
	}
	t, err := d.open(ctx)
	if err != nil {
		return probeOutcome(err), err
	}
	defer t.close()
	var m sunspecModel
	if d.o.Profile == ProfileSunSpec {
		if m, err = discoverSunSpec(ctx, t, uint16(d.o.SunSpecBase)); err != nil {
			return drivers.Failed, d.hint(err)
		}
	}
	if _, err := d.poll(ctx, t, m); err != nil {
		return drivers.Failed, d.hint(err)
	}
	return drivers.Loaded, nil
}

func probeOutcome(err error) drivers.Probe { return drivers.ProbeResult(err, ErrNoDevice) }

// poll reads one sample. A NaN or infinite value (an Eastron float
// register the meter has not filled yet, a wrong profile) fails the poll:
// it cannot be signed as a reading.
func (d *Dev) poll(ctx context.Context, t transport, m sunspecModel) (drivers.EnergySample, error) {
	var s drivers.EnergySample
	var err error
	if d.o.Profile == ProfileSunSpec {
		s, err = pollSunSpec(ctx, t, m)
	} else {
		s, err = pollSDM(ctx, t, d.o.Profile)
	}
	if err != nil {
		return s, err
	}
	for _, v := range []*float64{s.ImportWh, s.ExportWh, &s.PowerW, &s.VoltageV, &s.CurrentA, &s.FreqHz} {
		if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
			return s, fmt.Errorf("energy: %s value %v is not a number: check the profile: %w", d.o.Profile, *v, ErrMalformed)
		}
	}
	return s, nil
}

// Run implements drivers.Driver. Poll errors are counted and retried at the
// next interval; a TCP connection is redialled after any error, since a
// late answer would be taken for the next request's. Run returns nil when
// ctx is done, or an error only if emit fails.
func (d *Dev) Run(ctx context.Context, emit drivers.Emit) error {
	d.running.Store(true)
	defer d.running.Store(false)
	var (
		t       transport
		model   sunspecModel
		last    *drivers.EnergySample
		lastAt  time.Time
		limited time.Time
		failed  int // polls failed in a row
	)
	defer func() {
		if t != nil {
			t.close()
		}
	}()
	tick := time.NewTicker(d.o.Interval)
	defer tick.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
		var err error
		if t == nil {
			if t, err = d.open(ctx); err == nil && d.o.Profile == ProfileSunSpec {
				model, err = discoverSunSpec(ctx, t, uint16(d.o.SunSpecBase))
				d.mu.Lock()
				d.st.Model = model.id
				d.mu.Unlock()
			}
		}
		var s drivers.EnergySample
		if err == nil {
			s, err = d.poll(ctx, t, model)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// One CRC error or timeout is line noise; three in a row are a
			// verdict for Probe.
			failed++
			if !errors.Is(err, ErrNoDevice) {
				err = d.hint(err)
			}
			if failed >= 3 {
				d.first.Set(probeOutcome(err), err)
			}
			d.mu.Lock()
			d.st.Errors[errKey(err)]++
			d.st.LastError = err.Error()
			d.st.Connected = false
			d.mu.Unlock()
			if now := time.Now(); now.After(limited) {
				limited = now.Add(time.Minute)
				d.log.Warn("poll failed", "err", err)
			}
			if t != nil && (d.o.Transport == TransportTCP || !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrCRC) && !errors.Is(err, ErrException)) {
				t.close() // the port or connection itself failed: reopen next time
				t = nil
			}
			continue
		}
		failed = 0
		d.first.Set(drivers.Loaded, nil)
		at := d.o.Now()
		if last != nil {
			s.Flags = checkCounters(*last, s, at.Sub(lastAt), d.o.MaxPowerW)
		}
		last, lastAt = &s, at
		d.mu.Lock()
		d.st.Connected, d.st.Polls, d.st.LastAt, d.st.Last = true, d.st.Polls+1, at, s
		for _, f := range s.Flags {
			d.st.Flags[f]++
		}
		d.mu.Unlock()
		if len(s.Flags) > 0 {
			d.log.Warn("energy counter implausible; signed as read and flagged", "flags", s.Flags)
		}
		if err := emit(ctx, drivers.Observation{Kind: drivers.KindEnergySample, Source: d.name, Time: at, Data: s}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("energy: emit: %w", err)
		}
	}
}

// jumpSlackWh absorbs the counters' resolution: the SDM registers count in
// 0.01 kWh steps at best, and a float32 of a large total rounds to a few Wh.
const jumpSlackWh = 20

// checkCounters compares cumulative counters with the previous poll.
func checkCounters(prev, cur drivers.EnergySample, dt time.Duration, maxW float64) []string {
	var flags []string
	limit := maxW*dt.Hours()*1.05 + jumpSlackWh
	for _, c := range []struct {
		name      string
		prev, cur *float64
	}{{"import", prev.ImportWh, cur.ImportWh}, {"export", prev.ExportWh, cur.ExportWh}} {
		if c.prev == nil || c.cur == nil {
			continue
		}
		switch delta := *c.cur - *c.prev; {
		case delta < 0:
			flags = append(flags, c.name+"_back")
		case delta > limit:
			flags = append(flags, c.name+"_jump")
		}
	}
	return flags
}
