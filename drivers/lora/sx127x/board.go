package sx127x

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/edge-agent/edge-agent/drivers"
)

// BoardDev is an SX127x on a board named by device paths, opened when it
// runs rather than when it is built: a daemon configured for a radio that is
// not fitted must still start, and say so in its probe and in doctor.
type BoardDev struct {
	name  string
	board Board
	opts  Opts
	open  func(name string, b Board, o *Opts) (*Dev, io.Closer, error) // Open; tests replace it

	mu      sync.Mutex
	dev     *Dev  // the radio while Run has it open
	closed  Stats // counters of the radios earlier Runs opened
	lastErr string
}

// BoardStats is what a BoardDev has seen over all its Runs.
type BoardStats struct {
	Stats            // the radio's counters, summed over every Run
	Open      bool   // a Run has the radio open and is receiving
	Gateway   string // the EUI the records carry as LoRaRX.Gateway
	LastError string // why the last Run could not open or stopped; "" after an open that held
}

var (
	_ drivers.Driver       = (*BoardDev)(nil)
	_ drivers.Prober       = (*BoardDev)(nil)
	_ drivers.DeviceLister = (*BoardDev)(nil)
)

// NewBoard checks the options and returns a BoardDev; nothing is opened.
func NewBoard(name string, b Board, o *Opts) (*BoardDev, error) {
	if name == "" {
		return nil, fmt.Errorf("sx127x: new: missing driver name: %w", ErrInvalidOption)
	}
	if b.SPI == "" || b.Reset == "" || b.DIO0 == "" {
		return nil, fmt.Errorf("sx127x: new %s: spi, reset and dio0 are required: %w", name, ErrInvalidOption)
	}
	opts, err := withDefaults(name, o)
	if err != nil {
		return nil, err
	}
	return &BoardDev{name: name, board: b, opts: opts, open: openBoard}, nil
}

func openBoard(name string, b Board, o *Opts) (*Dev, io.Closer, error) {
	d, port, err := Open(name, b, o)
	return d, port, err
}

// Name is the instance name.
func (d *BoardDev) Name() string { return d.name }

// Devices implements drivers.DeviceLister: the spidev node (none for a
// periph registry name such as "SPI0.0"), and the GPIO chips, all of which
// periph's gpioioctl opens to find the reset and DIO0 lines by name.
func (d *BoardDev) Devices() []drivers.Device {
	var ds []drivers.Device
	if strings.Contains(d.board.SPI, "/") {
		ds = append(ds, drivers.Device{Kind: drivers.DeviceNode, Path: d.board.SPI, What: "SX127x radio (SPI)"})
	}
	return append(ds, drivers.Device{Kind: drivers.DeviceNodeReadOnly, Path: "/dev/gpiochip*",
		What: "GPIO chip (reset " + d.board.Reset + ", DIO0 " + d.board.DIO0 + ")"})
}

// Probe looks for the SPI device node without touching the radio.
func (d *BoardDev) Probe(ctx context.Context) (drivers.Probe, error) { return ProbeBoard(ctx, d.board) }

// Run opens the board, receives until ctx is done, and closes it.
func (d *BoardDev) Run(ctx context.Context, emit drivers.Emit) error {
	opts := d.opts
	dev, port, err := d.open(d.name, d.board, &opts)
	if err != nil {
		d.ended(nil, err)
		return err
	}
	defer port.Close()
	d.mu.Lock()
	d.dev, d.lastErr = dev, ""
	d.mu.Unlock()
	err = dev.Run(ctx, emit)
	d.ended(dev, err)
	return err
}

// ended folds a closed radio's counters into the board's and notes err.
func (d *BoardDev) ended(dev *Dev, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dev != nil {
		d.closed = d.closed.add(dev.Stats())
		d.dev = nil
	}
	if err != nil {
		d.lastErr = err.Error()
	}
}

// Stats returns the board's state and counters; safe from any goroutine.
func (d *BoardDev) Stats() BoardStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := BoardStats{Stats: d.closed, Gateway: d.opts.Gateway, LastError: d.lastErr, Open: d.dev != nil}
	if d.dev != nil {
		s.Stats = s.Stats.add(d.dev.Stats())
	}
	return s
}

func (s Stats) add(o Stats) Stats {
	return Stats{RxOK: s.RxOK + o.RxOK, RxBadCRC: s.RxBadCRC + o.RxBadCRC, RxNoCRC: s.RxNoCRC + o.RxNoCRC,
		Spurious: s.Spurious + o.Spurious, TxOK: s.TxOK + o.TxOK, TxFailed: s.TxFailed + o.TxFailed}
}
