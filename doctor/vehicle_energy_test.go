package doctor_test

import (
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/doctor"
	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/status/statustest"
)

func TestVehicleAndEnergyVerdicts(t *testing.T) {
	car := func(o status.OBD) status.Driver {
		if o.Quirks == nil {
			o.Quirks = map[string]uint64{}
		}
		return status.Driver{Name: "car", Family: "obd", State: status.StateLoaded, OBD: &o}
	}
	meter := func(e status.Energy) status.Driver {
		if e.Errors == nil {
			e.Errors = map[string]uint64{}
		}
		if e.Flags == nil {
			e.Flags = map[string]uint64{}
		}
		return status.Driver{Name: "meter", Family: "energy", State: status.StateLoaded, Energy: &e}
	}
	ok := status.OBD{State: "ok", Baud: 38400, Adapter: "ELM327 v1.5", Protocol: "A6", Offered: []string{"speed", "rpm"}, Samples: 900,
		Quirks: map[string]uint64{"echo": 2, "searching": 1}}
	tests := []struct {
		name      string
		d         status.Driver
		check     string
		level     doctor.Level
		msg, next string
	}{
		{"obd ok", car(ok), "driver car", doctor.OK, "ELM327 v1.5 at 38400 baud, protocol A6, 900 samples", ""},
		{"obd quirks listed", car(ok), "driver car", doctor.OK, "quirks: echo 2, searching 1", ""},
		{"ignition off is normal", car(status.OBD{State: "no_vehicle", Baud: 9600, Adapter: "ELM327 v2.1", Quirks: map[string]uint64{"unable_to_connect": 40}}),
			"driver car", doctor.OK, "ignition off", ""},
		{"obd wrong baud", car(status.OBD{State: "disconnected", LastError: "obd: no ELM327 answered", Quirks: map[string]uint64{"garbage": 6}}),
			"driver car", doctor.Fail, "OBD adapter disconnected: obd: no ELM327 answered", "set baud"},
		{"obd unplugged", car(status.OBD{State: "disconnected", Adapter: "ELM327 v1.5", LastError: "obd: open /dev/ttyUSB0: obd: adapter not found"}),
			"driver car", doctor.Fail, "adapter not found", "went away"},
		{"meter ok", meter(status.Energy{Connected: true, Profile: "sdm630", Polls: 12, PowerW: 2824}), "driver meter", doctor.OK, "sdm630, 12 polls", ""},
		{"meter timeouts", meter(status.Energy{Profile: "sdm630", Errors: map[string]uint64{"timeout": 9}, LastError: "energy: no answer from the slave"}),
			"driver meter", doctor.Fail, "timeouts 9", "swap the A and B wires"},
		{"meter crc", meter(status.Energy{Profile: "sdm630", Errors: map[string]uint64{"crc": 3}}), "driver meter", doctor.Fail, "crc errors 3", "terminator"},
		{"meter wrong profile", meter(status.Energy{Profile: "sunspec", Errors: map[string]uint64{"exception": 1}}), "driver meter", doctor.Fail, "exceptions 1", "profile"},
		{"meter counter back", meter(status.Energy{Connected: true, Profile: "sdm630", Model: 0, Polls: 12, Flags: map[string]uint64{"import_back": 1}}),
			"driver meter", doctor.Warn, "1 samples flagged", "signed as read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBox(t)
			doc := statustest.Sample(testNow)
			tt.d.LastObservation = doc.Time.Add(-time.Second)
			doc.Drivers = append(doc.Drivers, tt.d)
			serveDoc(t, b.socket, doc)
			r := b.diagnose(t, b.setup(t))
			expect(t, r, tt.check, tt.level, tt.msg, tt.next)
		})
	}
}
