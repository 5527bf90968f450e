// Package env reads Bosch BME280 and BMP280 environment sensors over I²C and
// emits env.sample observations (temperature, pressure and, on the BME280,
// relative humidity).
//
// The chip is driven in forced mode through periph.io/x/devices/v3/bmxx80,
// which implements the datasheet's register protocol and the integer
// compensation formulas (BME280 datasheet, section 4.2.3). This package adds
// what a daemon needs around it: classifying an absent or foreign chip
// (Skipped) apart from a broken setup (Failed), a chip id check that does not
// write to the chip (so doctor can probe while the daemon runs), and a read
// loop that survives a flaky bus by re-initialising the chip with backoff.
//
// Concurrency: Run must be called at most once at a time per Dev. Name, Last
// and Probe are safe to call from other goroutines while Run is running;
// Probe only reads the chip id register, which does not disturb a
// measurement in progress.
package env

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/bmxx80"
	"periph.io/x/host/v3/sysfs"

	"github.com/edge-agent/edge-agent/backoff"
	"github.com/edge-agent/edge-agent/clock"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/ratelog"
)

// Register addresses and chip ids, BME280 datasheet section 5.3 (memory map)
// and 5.4.1 (id). The BMP280 shares the map without the humidity registers.
const (
	regChipID = 0xD0

	chipIDBME280 = 0x60
	chipIDBMP280 = 0x58 // mass-production parts; 0x56/0x57 were samples only
	chipIDBMP180 = 0x55 // named in the error because it is a common mix-up
)

// Chip names as they appear in EnvSample.Chip.
const (
	ChipBME280 = "bme280"
	ChipBMP280 = "bmp280"
)

// Opts configures a Dev. The zero value of each field means its default.
type Opts struct {
	// Bus is the I²C bus: a device node ("/dev/i2c-1") or its number ("1").
	Bus string
	// Addr is the 7-bit address: 0x76 (SDO to GND) or 0x77 (SDO to VDDIO).
	Addr uint16
	// Oversampling applies to temperature, pressure and humidity alike: 1, 2,
	// 4, 8 or 16 (datasheet 5.4.3 and 5.4.5). Higher is less noisy and
	// slower: 16× takes about 100 ms per reading.
	Oversampling int
	// Interval is the time between readings.
	Interval time.Duration
	// Logger receives the driver's logs; a "component" attribute is added.
	Logger *slog.Logger
	// Now is the clock that stamps each reading.
	Now func() time.Time
	// Clock runs the reading and retry timers; nil is the wall clock.
	Clock clock.Clock
}

// DefaultOpts returns the options used for any field left zero.
func DefaultOpts() Opts {
	return Opts{
		Bus:          "/dev/i2c-1",
		Addr:         0x76,
		Oversampling: 4,
		Interval:     10 * time.Second,
		Logger:       slog.New(slog.DiscardHandler),
		Now:          time.Now,
	}
}

// Dev is one configured BME280/BMP280.
type Dev struct {
	name    string
	opts    Opts
	busNum  int                 // for New: the N of /dev/i2c-N
	bus     i2c.Bus             // for NewWithBus: the caller's bus, which Dev never closes
	devDir  string              // where to look for i2c-N; tests point it at an empty directory
	osrs    bmxx80.Oversampling // one setting for all three channels
	log     *slog.Logger
	backoff backoff.Backoff // a template: each Run starts from its minimum

	mu      sync.Mutex
	last    drivers.EnvSample
	lastAt  time.Time
	hasLast bool
}

var (
	_ drivers.Driver       = (*Dev)(nil)
	_ drivers.Prober       = (*Dev)(nil)
	_ drivers.DeviceLister = (*Dev)(nil)
)

// New returns a Dev that opens the bus named in o.Bus when it runs or probes.
// o may be nil for the defaults.
func New(name string, o *Opts) (*Dev, error) {
	d, err := newDev(name, o)
	if err != nil {
		return nil, err
	}
	n, err := parseBus(d.opts.Bus)
	if err != nil {
		return nil, err
	}
	d.busNum = n
	return d, nil
}

// NewWithBus returns a Dev on an already open bus, such as an
// i2ctest.Playback or a bus shared with other drivers. o.Bus is ignored and
// the caller keeps ownership of bus.
func NewWithBus(name string, bus i2c.Bus, o *Opts) (*Dev, error) {
	if bus == nil {
		return nil, fmt.Errorf("env: new %q: nil bus: %w", name, ErrInvalidOption)
	}
	d, err := newDev(name, o)
	if err != nil {
		return nil, err
	}
	d.bus = bus
	return d, nil
}

func newDev(name string, o *Opts) (*Dev, error) {
	def := DefaultOpts()
	opts := drivers.OptsOf(o)
	drivers.SetDefault(&opts.Bus, def.Bus)
	drivers.SetDefault(&opts.Addr, def.Addr)
	drivers.SetDefault(&opts.Oversampling, def.Oversampling)
	drivers.SetDefault(&opts.Interval, def.Interval)
	drivers.SetDefault(&opts.Logger, def.Logger)
	if opts.Now == nil {
		opts.Now = def.Now
	}
	if opts.Addr != 0x76 && opts.Addr != 0x77 {
		return nil, fmt.Errorf("env: new %q: address %#x: a BME280/BMP280 answers only at 0x76 or 0x77: %w", name, opts.Addr, ErrInvalidOption)
	}
	osrs, ok := oversampling(opts.Oversampling)
	if !ok {
		return nil, fmt.Errorf("env: new %q: oversampling %d: use 1, 2, 4, 8 or 16: %w", name, opts.Oversampling, ErrInvalidOption)
	}
	if opts.Interval < 0 {
		return nil, fmt.Errorf("env: new %q: interval %v is negative: %w", name, opts.Interval, ErrInvalidOption)
	}
	return &Dev{
		name:    name,
		opts:    opts,
		busNum:  -1,
		devDir:  "/dev",
		osrs:    osrs,
		log:     opts.Logger.With("component", "env", "driver", name),
		backoff: backoff.New(time.Second, max(opts.Interval, time.Minute), opts.Clock),
	}, nil
}

// oversampling maps a factor to the register setting (datasheet 5.4.3 osrs_h,
// 5.4.5 osrs_t and osrs_p).
func oversampling(n int) (bmxx80.Oversampling, bool) {
	switch n {
	case 1:
		return bmxx80.O1x, true
	case 2:
		return bmxx80.O2x, true
	case 4:
		return bmxx80.O4x, true
	case 8:
		return bmxx80.O8x, true
	case 16:
		return bmxx80.O16x, true
	}
	return 0, false
}

// parseBus accepts "/dev/i2c-N" or "N".
func parseBus(s string) (int, error) {
	num := strings.TrimPrefix(s, "/dev/i2c-")
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("env: bus %q: want /dev/i2c-N or N: %w", s, ErrInvalidOption)
	}
	return n, nil
}

// Name implements drivers.Driver.
func (d *Dev) Name() string { return d.name }

// Devices implements drivers.DeviceLister: the I²C bus's node, none for a
// bus the caller opened (NewWithBus).
func (d *Dev) Devices() []drivers.Device {
	if d.bus != nil {
		return nil
	}
	return []drivers.Device{{Kind: drivers.DeviceNode, Path: d.node(), What: "I²C bus"}}
}

// node is the device node of the bus: what openBus opens.
func (d *Dev) node() string { return fmt.Sprintf("%s/i2c-%d", d.devDir, d.busNum) }

// Last returns the last successful reading and when it was taken; ok is false
// until the first one.
func (d *Dev) Last() (s drivers.EnvSample, at time.Time, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s = d.last
	if s.HumidityPct != nil {
		h := *s.HumidityPct // the caller must not alias our copy
		s.HumidityPct = &h
	}
	return s, d.lastAt, d.hasLast
}

// Probe implements drivers.Prober. It opens the bus and reads the chip id,
// nothing else.
func (d *Dev) Probe(ctx context.Context) (drivers.Probe, error) {
	if err := ctx.Err(); err != nil {
		return drivers.Failed, fmt.Errorf("env: probe %q: %w", d.name, err)
	}
	bus, release, err := d.openBus()
	if err != nil {
		return probeOutcome(err), err
	}
	defer release()
	if _, err := d.chipID(bus); err != nil {
		return probeOutcome(err), err
	}
	return drivers.Loaded, nil
}

// probeOutcome sorts an error from openBus or chipID into the three outcomes:
// absent hardware is Skipped, anything that needs fixing is Failed.
func probeOutcome(err error) drivers.Probe {
	return drivers.ProbeResult(err, ErrNoBus, ErrNoChip, ErrWrongChip)
}

// openBus returns the bus to use and a function that releases it.
func (d *Dev) openBus() (i2c.Bus, func(), error) {
	if d.bus != nil {
		return d.bus, func() {}, nil
	}
	node := d.node()
	// Open the node ourselves first: periph's sysfs flattens the errno into
	// text, and "absent" and "not allowed" lead to different outcomes.
	f, err := os.OpenFile(node, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, classifyOpen(node, err)
	}
	f.Close()
	b, err := sysfs.NewI2C(d.busNum)
	if err != nil {
		return nil, nil, fmt.Errorf("env: open %s: %w", node, err)
	}
	return b, func() { b.Close() }, nil
}

func classifyOpen(node string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("env: open %s: enable I²C (raspi-config, or dtparam=i2c_arm=on in config.txt) or fix the bus number: %w", node, ErrNoBus)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("env: open %s: add user edge-agent to group i2c: %w", node, ErrPermission)
	}
	return fmt.Errorf("env: open %s: %w", node, err)
}

// chipID reads the id register (datasheet 5.4.1) and names the chip.
func (d *Dev) chipID(bus i2c.Bus) (string, error) {
	var id [1]byte
	if err := bus.Tx(d.opts.Addr, []byte{regChipID}, id[:]); err != nil {
		// On Linux a NACK surfaces as ENXIO or EREMOTEIO; either way nothing
		// usable answered.
		return "", fmt.Errorf("env: read chip id at %#x on %s: check wiring and the address (0x76 or 0x77): %w (%w)", d.opts.Addr, bus, ErrNoChip, err)
	}
	switch id[0] {
	case chipIDBME280:
		return ChipBME280, nil
	case chipIDBMP280:
		return ChipBMP280, nil
	case chipIDBMP180:
		return "", fmt.Errorf("env: chip at %#x on %s is a BMP180 (id %#x), which this driver does not support: %w", d.opts.Addr, bus, id[0], ErrWrongChip)
	}
	return "", fmt.Errorf("env: chip at %#x on %s has id %#x: %w", d.opts.Addr, bus, id[0], ErrWrongChip)
}

// sensor is an initialised chip: identified, calibration read, configured.
type sensor struct {
	chip string
	dev  *bmxx80.Dev
}

func (d *Dev) connect(bus i2c.Bus) (*sensor, error) {
	chip, err := d.chipID(bus)
	if err != nil {
		return nil, err
	}
	// bmxx80 reads the id again, then the trimming parameters (datasheet
	// 4.2.2) and writes ctrl_hum, config and ctrl_meas (5.4.3 to 5.4.6).
	bd, err := bmxx80.NewI2C(bus, d.opts.Addr, &bmxx80.Opts{Temperature: d.osrs, Pressure: d.osrs, Humidity: d.osrs})
	if err != nil {
		return nil, fmt.Errorf("env: configure %s at %#x on %s: %w", chip, d.opts.Addr, bus, err)
	}
	return &sensor{chip: chip, dev: bd}, nil
}

// read takes one forced-mode measurement and converts it from periph's typed
// units to the record's.
func (s *sensor) read() (drivers.EnvSample, error) {
	var e physic.Env
	if err := s.dev.Sense(&e); err != nil {
		return drivers.EnvSample{}, fmt.Errorf("env: read %s: %w", s.chip, err)
	}
	out := drivers.EnvSample{
		Chip:       s.chip,
		TempC:      float64(e.Temperature-physic.ZeroCelsius) / float64(physic.Celsius),
		PressurePa: float64(e.Pressure) / float64(physic.Pascal),
	}
	if s.chip == ChipBME280 {
		h := float64(e.Humidity) / float64(physic.PercentRH)
		out.HumidityPct = &h
	}
	return out, nil
}

// Run implements drivers.Driver. It returns an error only when the chip is not
// usable at start (the same reasons Probe gives); after a first successful
// start, bus errors are logged and retried with backoff until ctx is done.
func (d *Dev) Run(ctx context.Context, emit drivers.Emit) error {
	bus, release, err := d.openBus()
	if err != nil {
		return err
	}
	defer release()
	s, err := d.connect(bus)
	if err != nil {
		return err
	}
	d.log.Info("sensor ready", "chip", s.chip, "bus", fmt.Sprint(bus), "addr", fmt.Sprintf("%#x", d.opts.Addr),
		"oversampling", d.opts.Oversampling, "interval", d.opts.Interval)

	limit := ratelog.New(time.Minute, 1)
	failures := 0
	bo := d.backoff
	clk := bo.Clock()
	var wait time.Duration // before the next reading
	for {
		if clock.Sleep(ctx, clk, wait) != nil {
			return nil
		}
		start := clk.Now()
		var sample drivers.EnvSample
		if s == nil {
			// After an error the chip may have been power-cycled and lost
			// its configuration; start again from the id.
			s, err = d.connect(bus)
		}
		if s != nil {
			sample, err = s.read()
		}
		if err != nil {
			failures++
			s = nil
			wait = bo.Next()
			if ok, n := limit.Allow(d.opts.Now()); ok {
				d.log.Warn("reading failed; retrying", "err", err, "failures", failures, "retry_in", wait, "suppressed", n)
			}
			continue
		}
		if failures > 0 {
			d.log.Info("sensor recovered", "failures", failures)
			failures = 0
			bo.Reset()
		}
		at := d.opts.Now()
		d.setLast(sample, at)
		err = emit(ctx, drivers.Observation{Kind: drivers.KindEnvSample, Source: d.name, Time: at, Data: sample})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("env: emit: %w", err)
		}
		// Keep the period at Interval, not Interval plus conversion time.
		wait = max(d.opts.Interval-clk.Now().Sub(start), 0)
	}
}

func (d *Dev) setLast(s drivers.EnvSample, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.last, d.lastAt, d.hasLast = s, at, true
}
