// Package drivers defines what every hardware driver emits and how the daemon
// runs it. Each hardware family lives in a subpackage (gnss, lora, env, camera,
// sim); this package holds only the shared contract: the Observation, the
// Driver interface, the observation data types that verifiers rely on, and
// the Device list through which a driver tells doctor what it opens.
//
// A driver never blocks the rest of the daemon: it hands observations to an
// Emit function, which applies backpressure by blocking while the pipeline is
// full, and returns ctx.Err() once the daemon stops.
//
// Emit returning nil means queued, not stored: the observation is in memory
// and a power cut before the next commit loses it. A driver that keeps state
// of its own (what it has already reported) advances that state only from
// the observation's Durable callback, which the pipeline calls once the
// commit holding the record is on disk. See Emit.
package drivers

import (
	"context"
	"errors"
	"time"
)

// Observation is one physical reading, before it is stamped and signed.
type Observation struct {
	Kind   string    // one of the Kind… constants, e.g. KindGNSSFix
	Source string    // the driver instance name from the config
	Time   time.Time // when the reading was taken, device clock
	// Data is the kind-specific body: one of the structs in observations.go.
	// It must encode to a CBOR map; it becomes the record's "obs" claim.
	Data any
	// Durable, if set, is called once the signed record made from this
	// observation has been committed to the store: after a crash it is
	// still there. It is called at most once, from the pipeline's commit
	// goroutine, possibly after the driver's Run has returned (the pipeline
	// drains its queue after the drivers stop), so it must not block and
	// must not assume Run is still running. It is never called for an
	// observation that was dropped (daemon stopped before the commit, a
	// crash, an observation that could not be encoded).
	Durable func()
}

// Emit hands one observation to the pipeline. It blocks while the pipeline is
// full and returns ctx.Err() when ctx is done.
//
// A nil return means the observation is queued in memory, not that it is
// durable: until its commit (up to pipeline.commit_interval later) a crash
// or power cut loses it, and nobody is told. Drivers that only stream
// readings need nothing more. A driver that must not lose or skip what it
// reports (the camera's list of attested files) sets Observation.Durable and
// records its progress there, never on a nil return; a crash before the
// commit then repeats the observation after the restart instead of losing it.
type Emit func(ctx context.Context, o Observation) error

// Driver is one configured hardware source.
type Driver interface {
	// Name is the instance name from the config; it is Observation.Source.
	Name() string
	// Run reads the hardware until ctx is done. Cancellation is a clean exit
	// (return nil); a returned error means the driver gave up.
	Run(ctx context.Context, emit Emit) error
}

// Probe is the outcome of looking for a driver's hardware at start-up.
type Probe int

const (
	// Loaded means the hardware answered and the driver is running.
	Loaded Probe = iota + 1
	// Skipped means the hardware is not present (no device node, no chip at
	// the address). It is not an error: doctor shows it as a warning.
	Skipped
	// Failed means the hardware is present but could not be used.
	Failed
)

// ProbeResult sorts the error of a look for hardware into the three
// outcomes: nil is Loaded; an error that is one of absent (no device node,
// no directory, no chip at the address) is Skipped; anything else needs
// fixing and is Failed.
func ProbeResult(err error, absent ...error) Probe {
	if err == nil {
		return Loaded
	}
	for _, a := range absent {
		if errors.Is(err, a) {
			return Skipped
		}
	}
	return Failed
}

// OptsOf returns a copy of *o, or the zero T when o is nil: a driver's New
// takes nil to mean every default, and never keeps the caller's struct.
func OptsOf[T any](o *T) T {
	var opts T
	if o != nil {
		opts = *o
	}
	return opts
}

// SetDefault sets *field to def when it holds its zero value: the rule for
// the Opts of every driver, whose zero fields mean "the default".
func SetDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

func (p Probe) String() string {
	switch p {
	case Loaded:
		return "loaded"
	case Skipped:
		return "skipped"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// FixSink receives every GNSS epoch for the location stamp, whether or not
// the epoch also becomes a gnss.fix record. It must not block.
type FixSink func(Fix)

// Prober is implemented by drivers whose hardware can be looked for without
// running them: doctor calls it with the daemon down. The error says why the
// outcome is Skipped or Failed and what to do about it.
type Prober interface {
	Probe(ctx context.Context) (Probe, error)
}

// Device is something on the host a driver opens: a device node, a
// directory, or a server it dials. Doctor checks each for existence and for
// the service user's access, from the driver's own list, so a config key and
// the path the driver opens cannot disagree.
type Device struct {
	Kind DeviceKind
	// Path is a device node or directory, or a filepath.Match pattern when
	// the driver opens every match (/dev/gpiochip*); host:port for
	// DeviceTCP.
	Path string
	// What says what to look for on the board ("GNSS receiver (serial)");
	// for DeviceTCP, the protocol spoken ("gpsd", "modbus").
	What string
}

// DeviceKind is how a driver opens a Device, and so what access it needs.
type DeviceKind uint8

const (
	// DeviceNode is opened for reading and writing: a serial port, an I²C
	// bus, a spidev.
	DeviceNode DeviceKind = iota + 1
	// DeviceNodeReadOnly is opened for reading only: a GPIO chip, whose
	// line requests need no write access.
	DeviceNodeReadOnly
	// DeviceDir is a directory whose files the driver lists and reads.
	DeviceDir
	// DeviceSocket is a Unix socket the driver connects to (another
	// service's, such as concentratord's): connecting needs write access.
	DeviceSocket
	// DeviceTCP is a server at host:port the driver connects to.
	DeviceTCP
)

// DeviceLister is implemented by drivers that open devices. Devices lists
// them as the driver will open them, defaults applied, without touching
// them; the first is the one Probe looks at.
type DeviceLister interface {
	Devices() []Device
}
