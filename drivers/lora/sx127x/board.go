package sx127x

import (
	"context"
	"fmt"

	"github.com/edge-agent/edge-agent/drivers"
)

// BoardDev is an SX127x on a board named by device paths, opened when it
// runs rather than when it is built: a daemon configured for a radio that is
// not fitted must still start, and say so in its probe and in doctor.
type BoardDev struct {
	name  string
	board Board
	opts  Opts
}

var (
	_ drivers.Driver = (*BoardDev)(nil)
	_ drivers.Prober = (*BoardDev)(nil)
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
	return &BoardDev{name: name, board: b, opts: opts}, nil
}

// Name is the instance name.
func (d *BoardDev) Name() string { return d.name }

// Probe looks for the SPI device node without touching the radio.
func (d *BoardDev) Probe(ctx context.Context) (drivers.Probe, error) { return ProbeBoard(ctx, d.board) }

// Run opens the board, receives until ctx is done, and closes it.
func (d *BoardDev) Run(ctx context.Context, emit drivers.Emit) error {
	opts := d.opts
	dev, port, err := Open(d.name, d.board, &opts)
	if err != nil {
		return err
	}
	defer port.Close()
	return dev.Run(ctx, emit)
}
