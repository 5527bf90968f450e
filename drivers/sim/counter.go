package sim

import (
	"context"

	"github.com/edge-agent/edge-agent/drivers"
)

func (d *Dev) runCounter(ctx context.Context, emit drivers.Emit) error {
	return d.loop(ctx, emit, func(i int) (drivers.Observation, error) {
		return drivers.Observation{
			Kind: drivers.KindCounter,
			Time: d.o.Now(),
			Data: drivers.Counter{N: uint64(i) + 1},
		}, nil
	})
}
