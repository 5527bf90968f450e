package config

import (
	"reflect"
	"testing"
	"time"
)

func TestVehicleAndEnergyDrivers(t *testing.T) {
	for _, tc := range []sectionCase{
		{"obd defaults", "[[drivers.obd]]\nname = \"car\"\n", "", nil},
		{"obd some pids", "[[drivers.obd]]\nname = \"car\"\npids = [\"speed\", \"rpm\"]\nvin = \"hash\"\nbaud = 9600\n", "", nil},
		{"obd unknown pid", "[[drivers.obd]]\nname = \"car\"\npids = [\"boost\"]\n", "drivers.obd[0].pids[0]", ErrInvalid},
		{"obd no pids", "[[drivers.obd]]\nname = \"car\"\npids = []\n", "drivers.obd[0].pids", ErrMissing},
		{"obd vin choice", "[[drivers.obd]]\nname = \"car\"\nvin = \"yes\"\n", "drivers.obd[0].vin", ErrInvalid},
		{"obd odd baud", "[[drivers.obd]]\nname = \"car\"\nbaud = 38401\n", "drivers.obd[0].baud", ErrInvalid},
		{"obd fast interval", "[[drivers.obd]]\nname = \"car\"\ninterval = \"1ms\"\n", "drivers.obd[0].interval", ErrInvalid},
		{"energy defaults", "[[drivers.energy]]\nname = \"meter\"\n", "", nil},
		{"energy tcp sunspec", "[[drivers.energy]]\nname = \"inv\"\ntransport = \"tcp\"\naddr = \"192.168.1.50:502\"\nprofile = \"sunspec\"\n", "", nil},
		{"energy tcp without addr", "[[drivers.energy]]\nname = \"inv\"\ntransport = \"tcp\"\n", "drivers.energy[0].addr", ErrInvalid},
		{"energy profile", "[[drivers.energy]]\nname = \"m\"\nprofile = \"sdm72\"\n", "drivers.energy[0].profile", ErrInvalid},
		{"energy slave", "[[drivers.energy]]\nname = \"m\"\nslave = 0\n", "drivers.energy[0].slave", ErrInvalid},
		{"energy parity", "[[drivers.energy]]\nname = \"m\"\nparity = \"mark\"\n", "drivers.energy[0].parity", ErrInvalid},
		{"energy base", "[[drivers.energy]]\nname = \"m\"\nsunspec_base = 1\n", "drivers.energy[0].sunspec_base", ErrInvalid},
		{"energy typo", "[[drivers.energy]]\nname = \"m\"\nslaveid = 2\n", "drivers.energy[0].slaveid", ErrUnknownKey},
		{"names unique", "[[drivers.obd]]\nname = \"x\"\n[[drivers.energy]]\nname = \"x\"\n", "drivers.energy[0].name", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.run(t)
			if c != nil && len(c.Drivers.OBD)+len(c.Drivers.Energy) != 1 {
				t.Fatalf("driver not decoded: %+v", c.Drivers)
			}
		})
	}
	c := sectionCase{toml: "[[drivers.obd]]\nname = \"car\"\n[[drivers.energy]]\nname = \"m\"\n"}.run(t)
	var o OBD
	o.setDefaults()
	o.Name = "car"
	if !reflect.DeepEqual(c.Drivers.OBD[0], o) || c.Drivers.Energy[0].Interval.Duration != 10*time.Second || c.Drivers.Energy[0].SunSpecBase != 40000 {
		t.Errorf("defaults: %+v %+v", c.Drivers.OBD[0], c.Drivers.Energy[0])
	}
}
