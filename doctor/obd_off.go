//go:build noobd

package doctor

import (
	"context"
	"errors"

	"github.com/edge-agent/edge-agent/config"
)

// probeOBD in a build without the OBD-II driver (-tags noobd).
func probeOBD(config.OBD) func(ctx context.Context) error {
	return func(context.Context) error {
		return errors.New("this build has no OBD-II driver (a small-device build): remove [[drivers.obd]] or install the full build")
	}
}
