package agent

import (
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers/energy"
	"github.com/edge-agent/edge-agent/drivers/obd"
)

// TestVehicleEnergyConfigWiring: the [[drivers.obd]] and [[drivers.energy]]
// keys reach the drivers.
func TestVehicleEnergyConfigWiring(t *testing.T) {
	c, err := config.Parse([]byte(`version = 1
[[drivers.obd]]
name = "car"
device = "/dev/rfcomm0"
baud = 9600
pids = ["rpm", "odometer"]
interval = "500ms"
vin = "hash"
[[drivers.energy]]
name = "inverter"
transport = "tcp"
addr = "192.0.2.7:502"
slave = 126
profile = "sunspec"
sunspec_base = 50000
max_power_w = 6000
interval = "5s"
`))
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Logger: slog.New(slog.DiscardHandler), Now: time.Now}
	oo := obdOpts(c.Drivers.OBD[0], o)
	if oo.Device != "/dev/rfcomm0" || !reflect.DeepEqual(oo.Bauds, []int{9600}) || !reflect.DeepEqual(oo.PIDs, []string{"rpm", "odometer"}) ||
		oo.Interval != 500*time.Millisecond || !oo.VINHash || oo.NoVIN || oo.DTCInterval != 10*time.Minute {
		t.Errorf("obd opts %+v", oo)
	}
	eo := energyOpts(c.Drivers.Energy[0], o)
	if eo.Transport != "tcp" || eo.Addr != "192.0.2.7:502" || eo.Slave != 126 || eo.Profile != "sunspec" || eo.SunSpecBase != 50000 ||
		eo.MaxPowerW != 6000 || eo.Interval != 5*time.Second {
		t.Errorf("energy opts %+v", eo)
	}
	ds, err := buildDrivers(c, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ds[0].(*obd.Dev); !ok {
		t.Errorf("driver 0 is %T", ds[0])
	}
	if _, ok := ds[1].(*energy.Dev); !ok {
		t.Errorf("driver 1 is %T", ds[1])
	}
}
