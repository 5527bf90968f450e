package gnss

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-agent/edge-agent/backoff"
	"github.com/edge-agent/edge-agent/clock"
	"github.com/edge-agent/edge-agent/drivers"
)

// Source selects where fixes come from.
type Source string

const (
	// SourceSerial reads NMEA (and optionally UBX) from a serial port.
	SourceSerial Source = "serial"
	// SourceGPSD reads TPV and SKY reports from a gpsd daemon.
	SourceGPSD Source = "gpsd"
)

// Opts configures a Dev. Start from DefaultOpts.
type Opts struct {
	Source Source
	Device string // serial: e.g. /dev/ttyAMA0, /dev/serial/by-id/...
	Baud   int    // serial: bits per second; 0 means 9600 (the NMEA 0183 rate of most modules)
	UBX    bool   // also decode UBX NAV-PVT, NAV-SOL and NAV-POSLLH frames on the serial port
	// NoChecksum accepts NMEA sentences without a "*hh" checksum (some
	// timing receivers never send one). Off, they are counted and refused.
	NoChecksum bool
	// DateFloor and DateCeiling bound plausible receiver dates; zero means
	// the defaults (see Assembler).
	DateFloor, DateCeiling time.Time
	GPSDAddr               string        // gpsd: host:port; empty means 127.0.0.1:2947
	Interval               time.Duration // minimum GNSS time between gnss.fix records; 0 = every epoch
	OnFix                  drivers.FixSink
	Logger                 *slog.Logger
	Now                    func() time.Time
	Clock                  clock.Clock // runs the reconnect backoff; nil is the wall clock
}

// DefaultOpts returns a serial receiver on the Raspberry Pi's primary UART
// alias at 9600 baud, one record per second.
func DefaultOpts() Opts {
	return Opts{
		Source:   SourceSerial,
		Device:   "/dev/serial0",
		Baud:     9600,
		GPSDAddr: "127.0.0.1:2947",
		Interval: time.Second,
	}
}

// Stats is a snapshot of a Dev's counters, for status and doctor.
type Stats struct {
	Counts            // sentence-level counters (for gpsd: JSON reports)
	Epochs     uint64 // epochs completed, with or without a position
	Fixes      uint64 // epochs with a position
	Reconnects uint64 // times the port or gpsd connection was re-opened after a loss
	Connected  bool   // the port is open / gpsd is connected now
	LastFix    drivers.Fix
	LastFixAt  time.Time // system clock when the last epoch with a position arrived
	// ClockOffset is GNSS time minus the system clock, measured when the
	// first timed sentence of the last dated epoch arrived; positive means
	// the system clock is behind. It includes the receiver's output latency
	// (typically tens of milliseconds, up to ~0.5 s at 9600 baud), so only
	// offsets beyond a second say the system clock is wrong.
	ClockOffset time.Duration
	HaveOffset  bool // ClockOffset has been measured
	// LastReject describes the last refused input ("" when none).
	LastReject string
	// OpenError is why the port or gpsd could not be opened last time ("" once open).
	OpenError string
}

// Dev is one GNSS receiver.
type Dev struct {
	name string
	o    Opts
	log  *slog.Logger

	mu    sync.Mutex
	stats Stats

	// portMu is held by whoever has the serial port open: the running
	// session, or a Probe before Run started. Never both.
	portMu    sync.Mutex
	running   atomic.Bool // Run has been called: Probe reads the session's counters
	handoff   []byte      // bytes a probe read before Run began; guarded by mu
	handoffAt time.Time   // when the probe let go of them

	// Owned by the Run goroutine.
	lastEmit  time.Time // GNSS time of the last emitted fix
	lastSign  time.Time // GNSS time of the last signed fix, for time going back
	backRun   int       // consecutive epochs whose time went back
	opened    bool      // a connection has been made before
	loggedRej uint64    // Counts.Rejected() when rejections were last logged
	logRejAt  time.Time
}

var (
	_ drivers.Driver       = (*Dev)(nil)
	_ drivers.Prober       = (*Dev)(nil)
	_ drivers.DeviceLister = (*Dev)(nil)
)

// New validates o (nil means DefaultOpts) and returns a Dev. It does not
// touch the hardware: Run opens it, Probe looks for it.
func New(name string, o *Opts) (*Dev, error) {
	if name == "" {
		return nil, errors.New("gnss: new: missing driver name")
	}
	opts := DefaultOpts()
	if o != nil {
		opts = *o
	}
	switch opts.Source {
	case SourceSerial:
		if opts.Device == "" {
			return nil, fmt.Errorf("gnss: new %s: missing device path for source %q", name, opts.Source)
		}
		if opts.Baud == 0 {
			opts.Baud = 9600
		}
		if opts.Baud < 0 {
			return nil, fmt.Errorf("gnss: new %s: invalid baud rate %d", name, opts.Baud)
		}
	case SourceGPSD:
		if opts.GPSDAddr == "" {
			opts.GPSDAddr = "127.0.0.1:2947"
		}
	case "":
		return nil, fmt.Errorf("gnss: new %s: missing source: set %q or %q", name, SourceSerial, SourceGPSD)
	default:
		return nil, fmt.Errorf("gnss: new %s: invalid source %q: use %q or %q", name, opts.Source, SourceSerial, SourceGPSD)
	}
	if opts.Interval < 0 {
		return nil, fmt.Errorf("gnss: new %s: invalid interval %v", name, opts.Interval)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Dev{name: name, o: opts, log: lg.With("component", "gnss", "driver", name)}, nil
}

// Name returns the instance name; it is Observation.Source.
func (d *Dev) Name() string { return d.name }

// Devices implements drivers.DeviceLister: the serial port, or gpsd.
func (d *Dev) Devices() []drivers.Device {
	if d.o.Source == SourceGPSD {
		return []drivers.Device{{Kind: drivers.DeviceTCP, Path: d.o.GPSDAddr, What: "gpsd"}}
	}
	return []drivers.Device{{Kind: drivers.DeviceNode, Path: d.o.Device, What: "GNSS receiver (serial)"}}
}

// Stats returns a snapshot of the counters. Safe from any goroutine.
func (d *Dev) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Run reads the receiver until ctx is done, reconnecting with backoff when
// the port or gpsd goes away. It returns nil on cancellation and an error
// only when emit fails for another reason than ctx.
func (d *Dev) Run(ctx context.Context, emit drivers.Emit) error {
	d.running.Store(true)
	switch d.o.Source {
	case SourceGPSD:
		return d.reconnectLoop(ctx, emit, d.gpsdSession)
	default:
		return d.reconnectLoop(ctx, emit, d.serialSession)
	}
}

// Probe looks for the receiver: see probeSerial and probeGPSD. Once Run has
// been called, a serial Probe opens nothing: it judges from what the
// running session reads, so the probe never steals the session's
// sentences or its port.
func (d *Dev) Probe(ctx context.Context) (drivers.Probe, error) {
	if d.o.Source == SourceGPSD {
		return d.probeGPSD(ctx)
	}
	if d.running.Load() {
		return d.probeSession(ctx)
	}
	return d.probeSerial(ctx)
}

const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// errEmit marks an error from the pipeline's Emit, which ends Run instead of
// causing a reconnect.
type errEmit struct{ err error }

func (e errEmit) Error() string { return e.err.Error() }
func (e errEmit) Unwrap() error { return e.err }

// session runs one connection. It returns when the connection is lost
// (after delivering data, healthy is true) or ctx is done.
type session func(ctx context.Context, emit drivers.Emit, healthy *bool) error

func (d *Dev) reconnectLoop(ctx context.Context, emit drivers.Emit, run session) error {
	bo := backoff.New(minBackoff, maxBackoff, d.o.Clock)
	var lastErr string
	for attempt := 0; ; attempt++ {
		healthy := false
		err := run(ctx, emit, &healthy)
		d.mu.Lock()
		d.stats.Connected = false
		d.mu.Unlock()
		if ctx.Err() != nil {
			return nil
		}
		var ee errEmit
		if errors.As(err, &ee) {
			return fmt.Errorf("gnss: %s: emit: %w", d.name, ee.err)
		}
		if healthy {
			bo.Reset()
		}
		wait := bo.Next()
		// Log a failure once, not every backoff: a receiver that stays
		// unplugged for a day must not fill the journal.
		if msg := fmt.Sprint(err); msg != lastErr {
			d.log.Warn("gnss source lost; reconnecting", "err", err, "retry_in", wait)
			lastErr = msg
		}
		if bo.Wait(ctx, wait) != nil {
			return nil
		}
	}
}

// connected records a (re)connection.
func (d *Dev) connected() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.opened {
		d.stats.Reconnects++
	}
	d.opened = true
	d.stats.Connected = true
}

// epochOut is a completed epoch waiting to be handed on outside the
// decoder's callback, where emit may block and fail.
type epochOut struct {
	fix drivers.Fix
	at  time.Time
}

// deliver updates stats, calls OnFix for every epoch, and emits the epochs
// with a position that the interval lets through. An epoch with an
// impossible value is counted and dropped: it must reach neither a signed
// record nor the location stamp.
func (d *Dev) deliver(ctx context.Context, emit drivers.Emit, eps []epochOut, counts *Counts, last string) error {
	kept := eps[:0]
	for _, e := range eps {
		if err := checkFix(e.fix); err != nil {
			counts.Invalid++
			last = err.Error()
			continue
		}
		kept = append(kept, e)
	}
	eps = kept
	sign := make([]bool, len(eps))
	for i := range eps {
		sign[i] = eps[i].fix.HasPosition() && d.forward(&eps[i].fix, counts)
	}
	d.mu.Lock()
	if counts != nil {
		d.stats.Counts = *counts
	}
	if last != "" {
		d.stats.LastReject = last
	}
	for _, e := range eps {
		d.stats.Epochs++
		if e.fix.TimeUnixNano != 0 {
			d.stats.ClockOffset, d.stats.HaveOffset = e.fix.Time().Sub(e.at), true
		}
		if e.fix.HasPosition() {
			d.stats.Fixes++
			d.stats.LastFix, d.stats.LastFixAt = e.fix, e.at
		}
	}
	d.mu.Unlock()
	d.logRejections(counts, last)
	for i, e := range eps {
		if d.o.OnFix != nil {
			d.o.OnFix(e.fix)
		}
		if !sign[i] || !d.due(e.fix) {
			continue
		}
		d.lastSign = e.fix.Time()
		o := drivers.Observation{Kind: drivers.KindGNSSFix, Source: d.name, Time: e.at, Data: e.fix}
		if err := emit(ctx, o); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return errEmit{err}
		}
	}
	return nil
}

// backAccept is how many consecutive epochs must agree that the receiver's
// time went back (a reset, a wrong date fixed) before it is believed.
const backAccept = 3

// forward enforces "time moves forward" on signed fixes: an epoch whose time
// is not after the last signed one is dropped, unless backAccept epochs in a
// row say so; the first fix signed on the new timeline carries BackNS.
func (d *Dev) forward(f *drivers.Fix, counts *Counts) bool {
	t := f.Time()
	if d.lastSign.IsZero() || t.After(d.lastSign) {
		d.backRun = 0
		return true
	}
	d.backRun++
	if d.backRun < backAccept || t.Equal(d.lastSign) {
		counts.TimeBack++
		return false
	}
	d.backRun = 0
	f.BackNS = int64(d.lastSign.Sub(t))
	d.lastSign, d.lastEmit = time.Time{}, time.Time{}
	return true
}

// rejectLogEvery bounds the rejection log to one line per interval: a
// receiver at the wrong baud rate produces hundreds a second.
const rejectLogEvery = time.Minute

func (d *Dev) logRejections(c *Counts, last string) {
	if c == nil {
		return
	}
	n := c.Rejected()
	if n == d.loggedRej {
		return
	}
	now := d.o.Now()
	if !d.logRejAt.IsZero() && now.Sub(d.logRejAt) < rejectLogEvery {
		return
	}
	d.log.Warn("gnss input rejected", "since_last", n-d.loggedRej, "counts", *c, "last", last)
	d.loggedRej, d.logRejAt = n, now
}

// checkFix is the last guard at the driver boundary, for every source: a
// value that is not finite or not physical is refused.
func checkFix(f drivers.Fix) error {
	if !f.HasPosition() {
		return nil // carries no values
	}
	if !(f.Lat >= -90 && f.Lat <= 90 && f.Lon >= -180 && f.Lon <= 180) || f.Mode > drivers.Fix3D || f.TimeUnixNano <= 0 {
		return fmt.Errorf("gnss: %w: position %v, %v, mode %d", ErrInvalidValue, f.Lat, f.Lon, f.Mode)
	}
	for i, v := range [...]*float64{f.AltMSL, f.SpeedMS, f.TrackDeg, f.HDOP, f.PDOP, f.VDOP, f.HAccM, f.VAccM} {
		r := fixRanges[i]
		if v != nil && !(*v >= r.lo && *v <= r.hi) { // NaN fails here too
			return fmt.Errorf("gnss: %w: %s %v", ErrInvalidValue, fixNames[i], *v)
		}
	}
	return nil
}

var (
	fixRanges = [...]valueRange{rangeAlt, rangeSpeed, rangeTrack, rangeDOP, rangeDOP, rangeDOP, rangeSigma, rangeSigma}
	fixNames  = [...]string{"altitude", "speed", "track", "hdop", "pdop", "vdop", "hacc", "vacc"}
)

// due applies Interval in GNSS time, so a burst of buffered epochs is thinned
// the same way as a live stream.
func (d *Dev) due(f drivers.Fix) bool {
	if d.o.Interval == 0 {
		return true
	}
	t := f.Time()
	if d.lastEmit.IsZero() || t.Sub(d.lastEmit) >= d.o.Interval-epochTolerance {
		d.lastEmit = t
		return true
	}
	return false
}
