package agent

import (
	"log/slog"
	"time"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/status"
)

// family is one driver family's seam in the daemon: how its [[drivers.*]]
// blocks become drivers, and how a running one reads in status. Each family
// is one file, family_<name>.go, next to its driver package; families lists
// them in the order their drivers are built and started.
type family struct {
	name string // status "family"
	// build makes the family's drivers from the config; nil for a family
	// whose blocks another family's build visits (sx127x: [[drivers.lora]]).
	build func(cfg *config.Config, fix drivers.FixSink, o Options) ([]drivers.Driver, error)
	// status fills ds's family section when d is one of the family's
	// drivers, and reports whether it was.
	status func(d drivers.Driver, ds *status.Driver, v driverView) bool
}

// driverView is what the daemon knows of a driver beyond the driver itself.
type driverView struct {
	counts *driverCounts
	life   driverState
	now    time.Time
}

// families are every driver family this build has, in build order.
var families = [...]family{simFamily, gnssFamily, envFamily, cameraFamily, loraFamily, sx127xFamily, obdFamily, energyFamily}

// familyUnknown is the status family of a driver no family claims: a bug
// to see, never a real family's name.
const familyUnknown = "unknown"

// buildDrivers makes the configured drivers, family by family. GNSS drivers
// feed the location stamp through fix.
func buildDrivers(cfg *config.Config, fix drivers.FixSink, o Options) ([]drivers.Driver, error) {
	var ds []drivers.Driver
	for _, f := range families {
		if f.build == nil {
			continue
		}
		got, err := f.build(cfg, fix, o)
		if err != nil {
			return nil, err
		}
		ds = append(ds, got...)
	}
	return ds, nil
}

// BuildDrivers makes the drivers the daemon would run for cfg, without
// running them: `edge-agent doctor` probes these.
func BuildDrivers(cfg *config.Config, o Options) ([]drivers.Driver, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return buildDrivers(cfg, nil, o)
}

// familyStatus fills ds's family and family section from d.
func familyStatus(d drivers.Driver, ds *status.Driver, v driverView) {
	for _, f := range families {
		if f.status(d, ds, v) {
			ds.Family = f.name
			return
		}
	}
	ds.Family = familyUnknown
}
