//go:build nocamera

package agent

import (
	"errors"
	"fmt"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/status"
)

// CameraBuilt reports whether this build has the camera family: this one
// (-tags nocamera, for gateways) does not.
const CameraBuilt = false

// cameraFamily only refuses [[drivers.camera]] in this build.
var cameraFamily = family{name: "camera", build: buildCameras, status: func(drivers.Driver, *status.Driver, driverView) bool { return false }}

// ErrNoCamera is returned when the config has [[drivers.camera]] in a build
// without the camera family.
var ErrNoCamera = errors.New("this build has no camera driver (a small-device build made with -tags nocamera): remove [[drivers.camera]] or install the full build")

func buildCameras(cfg *config.Config, _ drivers.FixSink, _ Options) ([]drivers.Driver, error) {
	if len(cfg.Drivers.Camera) > 0 {
		return nil, fmt.Errorf("agent: drivers.camera[0] (%s): %w", cfg.Drivers.Camera[0].Name, ErrNoCamera)
	}
	return nil, nil
}
