//go:build !nocamera

package agent

import (
	"fmt"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/camera"
	"github.com/edge-agent/edge-agent/status"
)

// CameraBuilt reports whether this build has the camera family; small
// builds for gateways (-tags nocamera) leave it out.
const CameraBuilt = true

// cameraFamily is [[drivers.camera]]: a dashcam's output directory.
var cameraFamily = family{name: "camera", build: buildCameras, status: cameraStatus}

func buildCameras(cfg *config.Config, _ drivers.FixSink, o Options) ([]drivers.Driver, error) {
	var ds []drivers.Driver
	for i, c := range cfg.Drivers.Camera {
		opts := cameraOpts(c, cfg.Device.DataDir, o)
		d, err := camera.New(c.Name, &opts)
		if err != nil {
			return nil, fmt.Errorf("agent: drivers.camera[%d] (%s): %w", i, c.Name, err)
		}
		ds = append(ds, d)
	}
	return ds, nil
}

func cameraOpts(c config.Camera, dataDir string, o Options) camera.Opts {
	opts := camera.DefaultOpts()
	opts.Dir, opts.Pattern = c.Dir, c.Pattern
	opts.Settle, opts.Rescan = c.Settle.Duration, c.Rescan.Duration
	opts.StateDir = dataDir
	opts.Logger = o.Logger
	opts.Now = o.Now
	return opts
}

// cameraStatus fills ds when d is a camera driver.
func cameraStatus(d drivers.Driver, ds *status.Driver, _ driverView) bool {
	c, ok := d.(*camera.Dev)
	if !ok {
		return false
	}
	s := c.Stats()
	ds.Camera = &status.Camera{FilesAttested: s.FilesAttested, LastFile: s.LastFile, LastAttested: s.LastAttested,
		Errors: s.Errors, LastError: s.LastError, Skipped: s.Skipped, LastSkipped: s.LastSkipped}
	return true
}
