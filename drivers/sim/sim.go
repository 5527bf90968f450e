package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
)

// Kind selects what a Dev simulates.
type Kind string

const (
	KindGNSS    Kind = "gnss"    // replays an NMEA track: drivers.KindGNSSFix
	KindLoRa    Kind = "lora"    // a gateway's received frames: drivers.KindLoRaRX
	KindEnv     Kind = "env"     // a BME280: drivers.KindEnvSample
	KindCamera  Kind = "camera"  // a dashcam's segment files: drivers.KindCameraFile
	KindCounter Kind = "counter" // synthetic load: drivers.KindCounter
	KindOBD     Kind = "obd"     // a car through an ELM327: drivers.KindVehicleOBD (VIN and DTCs first)
	KindEnergy  Kind = "energy"  // an SDM630 with solar behind it: drivers.KindEnergySample
)

// Opts configures a simulated source. Start from DefaultOpts.
type Opts struct {
	Kind Kind
	// Interval is the time between observations (gnss: between epochs). It
	// must be positive except for counter, where 0 means as fast as emit
	// accepts; counter is paced well down to ~10µs.
	Interval time.Duration
	// NMEA is the NMEA 0183 text gnss replays; nil selects the built-in
	// ten-minute drive (track/drive.nmea.gz).
	NMEA []byte
	// Dir is where camera writes its segment files; Run creates it (0750).
	Dir string
	// Count stops Run (returning nil) after this many observations; 0 runs
	// until ctx is done.
	Count int
	// Seed makes the synthetic data deterministic.
	Seed int64
	// Now is the clock that stamps observations; nil means time.Now.
	Now func() time.Time
	// OnFix, when set, receives every gnss epoch (fix or not) before the
	// gnss.fix observation is emitted: it feeds the pipeline's location
	// stamp. It must not block.
	OnFix drivers.FixSink
}

// DefaultOpts returns options that make a lively demo for kind. Camera still
// needs Dir.
func DefaultOpts(kind Kind) Opts {
	o := Opts{Kind: kind, Seed: 1}
	switch kind {
	case KindGNSS:
		o.Interval = time.Second // the track's own rate
	case KindLoRa:
		o.Interval = 500 * time.Millisecond
	case KindEnv:
		o.Interval = 5 * time.Second
	case KindCamera:
		o.Interval = 5 * time.Second
	case KindCounter:
		o.Interval = 0
	case KindOBD:
		o.Interval = 2 * time.Second
	case KindEnergy:
		o.Interval = 10 * time.Second
	}
	return o
}

// Dev is one simulated source.
type Dev struct {
	name   string
	o      Opts
	epochs []drivers.Fix // gnss only: the parsed track
}

var _ drivers.Driver = (*Dev)(nil)

// New validates o and returns a simulated source named name (the
// observations' Source). For gnss it parses the track now, so a bad track is
// reported before anything runs.
func New(name string, o Opts) (*Dev, error) {
	if name == "" {
		return nil, fmt.Errorf("sim: new: name is empty: give the source a name: %w", ErrMissingOption)
	}
	switch o.Kind {
	case KindGNSS, KindLoRa, KindEnv, KindCamera, KindCounter, KindOBD, KindEnergy:
	case "":
		return nil, fmt.Errorf("sim: new %s: kind is empty: set one of gnss, lora, env, camera, counter, obd, energy: %w", name, ErrMissingOption)
	default:
		return nil, fmt.Errorf("sim: new %s: kind %q: use one of gnss, lora, env, camera, counter, obd, energy: %w", name, o.Kind, ErrUnknownKind)
	}
	if o.Interval < 0 || (o.Interval == 0 && o.Kind != KindCounter) {
		return nil, fmt.Errorf("sim: new %s: interval %v must be positive: %w", name, o.Interval, ErrInvalidOption)
	}
	if o.Count < 0 {
		return nil, fmt.Errorf("sim: new %s: count %d is negative: use 0 to run until stopped: %w", name, o.Count, ErrInvalidOption)
	}
	if o.Kind == KindCamera && o.Dir == "" {
		return nil, fmt.Errorf("sim: new %s: camera needs dir, where its segment files are written: %w", name, ErrMissingOption)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	d := &Dev{name: name, o: o}
	if o.Kind == KindGNSS {
		track := o.NMEA
		if track == nil {
			track = builtinTrack
		}
		epochs, err := parseTrack(track)
		if err != nil {
			return nil, fmt.Errorf("sim: %s: parse NMEA track: %w", name, err)
		}
		d.epochs = epochs
	}
	return d, nil
}

// Name is the instance name: the observations' Source.
func (d *Dev) Name() string { return d.name }

// Run emits observations until ctx is done (returning nil), Count is reached
// (nil), or emit fails for another reason (the error).
func (d *Dev) Run(ctx context.Context, emit drivers.Emit) error {
	var err error
	switch d.o.Kind {
	case KindGNSS:
		err = d.runGNSS(ctx, emit)
	case KindLoRa:
		err = d.runLoRa(ctx, emit)
	case KindEnv:
		err = d.runEnv(ctx, emit)
	case KindCamera:
		err = d.runCamera(ctx, emit)
	case KindCounter:
		err = d.runCounter(ctx, emit)
	case KindOBD:
		err = d.runOBD(ctx, emit)
	case KindEnergy:
		err = d.runEnergy(ctx, emit)
	}
	if ctx.Err() != nil && (err == nil || errors.Is(err, ctx.Err())) {
		return nil // cancellation is a clean exit
	}
	return err
}

// loop paces observations: it calls one for observation i = 0, 1, … every
// Interval until Count is reached or ctx is done. one returns the observation
// to emit.
func (d *Dev) loop(ctx context.Context, emit drivers.Emit, one func(i int) (drivers.Observation, error)) error {
	p := newPacer(d.o.Interval)
	defer p.stop()
	for i := 0; d.o.Count == 0 || i < d.o.Count; i++ {
		if err := p.wait(ctx); err != nil {
			return err
		}
		obs, err := one(i)
		if err != nil {
			return err
		}
		obs.Source = d.name
		if err := emit(ctx, obs); err != nil {
			return fmt.Errorf("sim: %s: emit: %w", d.name, err)
		}
	}
	return nil
}

// rng returns the deterministic source for one Run; stream separates the
// kinds' sequences for the same seed.
func (d *Dev) rng(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(d.o.Seed), stream))
}

// pacer wakes once per interval on average. Timers wake late, so it catches
// up on a small backlog (which keeps a 10µs counter at its rate) but drops a
// large one (a pipeline that blocked for seconds gets no burst).
type pacer struct {
	interval time.Duration
	next     time.Time
	timer    *time.Timer
}

func newPacer(interval time.Duration) *pacer { return &pacer{interval: interval} }

func (p *pacer) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.interval <= 0 {
		return nil
	}
	now := time.Now()
	if p.next.IsZero() { // the first observation comes at once
		p.next = now.Add(p.interval)
		return nil
	}
	if lag := now.Sub(p.next); lag > max(p.interval, 50*time.Millisecond) {
		p.next = now
	}
	if d := p.next.Sub(now); d > 0 {
		if p.timer == nil {
			p.timer = time.NewTimer(d)
		} else {
			p.timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.timer.C:
		}
	}
	p.next = p.next.Add(p.interval)
	return nil
}

func (p *pacer) stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}
