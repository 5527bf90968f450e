package obd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/driverstest"
)

func TestParseReply(t *testing.T) {
	tests := []struct {
		name, cmd, raw string
		lines          []string
		status         string
		echo, search   bool
	}{
		{"plain", "010D", "41 0D 32\r\r", []string{"41 0D 32"}, "", false, false},
		{"echo left on", "010D", "010D\r41 0D 32\r\r", []string{"41 0D 32"}, "", true, false},
		{"echo with spaces", "010D", "01 0D\r410D32\r\r", []string{"410D32"}, "", true, false},
		{"searching", "0100", "SEARCHING...\r41 00 BE 3F A8 13\r\r", []string{"41 00 BE 3F A8 13"}, "", false, true},
		{"no data", "012F", "NO DATA\r\r", nil, statusNoData, false, false},
		{"bus init error", "0100", "SEARCHING...\rBUS INIT: ...ERROR\r\r", nil, statusBusInit, false, true},
		{"bus init ok", "0100", "BUS INIT: ...OK\r41 00 BE 3F A8 13\r", []string{"41 00 BE 3F A8 13"}, "", false, false},
		{"unable", "0100", "UNABLE TO CONNECT\r", nil, statusUnable, false, false},
		{"unknown", "ATS0", "?\r\r", nil, statusUnknown, false, false},
		{"crlf", "ATI", "\r\nELM327 v2.1\r\n\r\n", []string{"ELM327 v2.1"}, "", false, false},
		{"can error", "0100", "CAN ERROR\r", nil, statusCANError, false, false},
		{"stopped", "0100", "STOPPED\r", nil, statusStopped, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseReply(tt.cmd, []byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.lines, tt.lines) || r.status != tt.status || r.echo != tt.echo || r.searching != tt.search {
				t.Errorf("got %+v", r)
			}
		})
	}
	if _, err := parseReply("ATZ", []byte{0xF8, 0x80, 'E', 'L'}); !errors.Is(err, ErrGarbage) {
		t.Errorf("framing errors: err = %v, want ErrGarbage", err)
	}
}

func frameLines(t *testing.T, lines ...string) []frame {
	t.Helper()
	fs, err := reply{lines: lines}.frames()
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestVINAndDTCs(t *testing.T) {
	const vin = "1D4GP00R55B123456"
	can := frameLines(t, "014", "0: 49 02 01 31 44 34", "1: 47 50 30 30 52 35 35", "2: 42 31 32 33 34 35 36")
	if got, err := parseVIN(can); err != nil || got != vin {
		t.Errorf("CAN VIN = %q, %v", got, err)
	}
	kline := frameLines(t, "49 02 01 00 00 00 31", "49 02 02 44 34 47 50", "49 02 03 30 30 52 35", "49 02 04 35 42 31 32", "49 02 05 33 34 35 36")
	if got, err := parseVIN(kline); err != nil || got != vin {
		t.Errorf("K-line VIN = %q, %v", got, err)
	}
	if _, err := parseVIN(frameLines(t, "49 02 01 31 32")); !errors.Is(err, ErrMalformed) {
		t.Errorf("short VIN: %v", err)
	}
	got, err := parseDTCs(frameLines(t, "43 02 01 33 C1 23"), true)
	if err != nil || !reflect.DeepEqual(got, []string{"P0133", "U0123"}) {
		t.Errorf("CAN DTCs = %v, %v", got, err)
	}
	got, err = parseDTCs(frameLines(t, "43 01 33 00 00 00 00"), false)
	if err != nil || !reflect.DeepEqual(got, []string{"P0133"}) {
		t.Errorf("K-line DTCs = %v, %v", got, err)
	}
	if _, err := parseDTCs(frameLines(t, "43 05 01 33"), true); !errors.Is(err, ErrMalformed) {
		t.Errorf("count beyond the data: %v", err)
	}
}

func TestPIDFormulas(t *testing.T) {
	// Known answers from SAE J1979's worked examples.
	var s drivers.VehicleOBD
	ps, _ := lookupPIDs(PIDNames())
	data := map[byte][]byte{0x0D: {0x32}, 0x0C: {0x1A, 0xF8}, 0x05: {0x7B}, 0x2F: {0xFF}, 0xA6: {0x00, 0x01, 0xE2, 0x40}}
	for _, p := range ps {
		p.set(&s, data[p.num])
	}
	if *s.SpeedKmh != 50 || *s.RPM != 1726 || *s.CoolantC != 83 || *s.FuelPct != 100 || *s.OdometerKm != 12345.6 {
		t.Errorf("got speed %v rpm %v coolant %v fuel %v odo %v", *s.SpeedKmh, *s.RPM, *s.CoolantC, *s.FuelPct, *s.OdometerKm)
	}
	var sup supported
	if more := sup.add(0, []byte{0xBE, 0x1F, 0xA8, 0x13}); !more || !sup[0x01] || sup[0x02] || !sup[0x0C] || !sup[0x0D] || !sup[0x05] {
		t.Errorf("bitmap decode wrong: %v", sup[:0x21])
	}
	if _, err := lookupPIDs([]string{"boost"}); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("unknown pid: %v", err)
	}
}

func fastOpts(dev string) *Opts {
	return &Opts{Device: dev, Interval: 20 * time.Millisecond, IdleRetry: 100 * time.Millisecond,
		Timeout: 300 * time.Millisecond, SearchTimeout: time.Second}
}

// partialCar answers speed, RPM and coolant; its bitmap also lists fuel
// level, which it then answers NO DATA; it has no odometer.
func partialCar() *car {
	return &car{
		pids:    map[byte][]byte{0x0D: {0x32}, 0x0C: {0x1A, 0xF8}, 0x05: {0x7B}},
		offered: map[byte]bool{0x05: true, 0x0C: true, 0x0D: true, 0x2F: true, 0x20: true, 0x21: true},
		vin:     "1D4GP00R55B123456",
		dtcs:    [][2]byte{{0x01, 0x33}},
	}
}

func TestAdapterClones(t *testing.T) {
	tests := []struct {
		name   string
		cl     clone
		kline  bool
		quirks []string // each must be counted at least once
		none   []string // and these never
		baud   int
	}{
		{"genuine", clone{}, false, []string{quirkSearching, statusNoData}, []string{quirkEcho, quirkNoPrompt, quirkBaudChange, statusUnknown}, 38400},
		{"echo stuck, no prompt", clone{echoStuck: true, noPrompt: true}, false, []string{quirkEcho, quirkNoPrompt}, []string{quirkBaudChange}, 38400},
		{"9600 clone without S0/H0, K-line car", clone{baud: 9600, noS0H0: true}, true, []string{quirkBaudChange, statusUnknown, quirkGarbage}, []string{quirkEcho}, 9600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := partialCar()
			c.kline = tt.kline
			sim := newELMSim(t, c, tt.cl)
			o := fastOpts(sim.path())
			o.VINHash = tt.kline
			d, err := New("car", o)
			if err != nil {
				t.Fatal(err)
			}
			var col driverstest.Recorder
			driverstest.Start(t, d, col.Emit)
			condtest.WaitFor(t, 10*time.Second, "3 samples", func() bool { return len(col.Kind(drivers.KindVehicleOBD)) >= 3 })
			s := col.Kind(drivers.KindVehicleOBD)[0].Data.(drivers.VehicleOBD)
			if s.SpeedKmh == nil || *s.SpeedKmh != 50 || *s.RPM != 1726 || *s.CoolantC != 83 || s.FuelPct != nil || s.OdometerKm != nil {
				t.Errorf("sample = %+v", s)
			}
			if p, err := d.Probe(context.Background()); p != drivers.Loaded {
				t.Errorf("probe while running: %v %v", p, err)
			}
			st := d.Stats()
			if st.State != StateOK || st.Baud != tt.baud || !reflect.DeepEqual(st.Offered, []string{PIDSpeed, PIDRPM, PIDCoolant, PIDFuel}) {
				t.Errorf("stats = %+v", st)
			}
			if wantCAN := !tt.kline; isCAN(st.Protocol) != wantCAN {
				t.Errorf("protocol %q", st.Protocol)
			}
			for _, q := range tt.quirks {
				if st.Quirks[q] == 0 {
					t.Errorf("quirk %s not counted: %v", q, st.Quirks)
				}
			}
			for _, q := range tt.none {
				if st.Quirks[q] != 0 {
					t.Errorf("quirk %s counted %d times", q, st.Quirks[q])
				}
			}
			vins := col.Kind(drivers.KindVehicleVIN)
			if len(vins) != 1 {
				t.Fatalf("%d VIN records, want 1", len(vins))
			}
			v := vins[0].Data.(drivers.VehicleVIN)
			if tt.kline && (v.VIN != "" || len(v.SHA256) != 32) || !tt.kline && v.VIN != "1D4GP00R55B123456" {
				t.Errorf("VIN record %+v", v)
			}
			dtcs := col.Kind(drivers.KindVehicleDTC)
			if len(dtcs) == 0 || !reflect.DeepEqual(dtcs[0].Data.(drivers.VehicleDTC).Codes, []string{"P0133"}) {
				t.Errorf("DTC records %+v", dtcs)
			}
		})
	}
}

// The ignition off is a state, not an error: the adapter answers, the car
// does not, and sampling starts by itself when the car wakes.
func TestIgnitionOff(t *testing.T) {
	for _, kline := range []bool{false, true} {
		c := partialCar()
		c.off, c.kline = true, kline
		sim := newELMSim(t, c, clone{})
		d, _ := New("car", fastOpts(sim.path()))
		var col driverstest.Recorder
		driverstest.Start(t, d, col.Emit)
		want := statusUnable
		if kline {
			want = statusBusInit
		}
		condtest.WaitFor(t, 10*time.Second, "no_vehicle", func() bool { st := d.Stats(); return st.State == StateNoVehicle && st.Quirks[want] >= 2 })
		if n := len(col.Kind(drivers.KindVehicleOBD)); n != 0 {
			t.Fatalf("%d samples with the ignition off", n)
		}
		if d.Stats().Reconnect != 0 {
			t.Error("ignition off made the driver reconnect")
		}
		c.setOff(false)
		condtest.WaitFor(t, 10*time.Second, "samples after ignition on", func() bool { return len(col.Kind(drivers.KindVehicleOBD)) > 0 })
		// Switched off while driving: NO DATA to everything, then a new search.
		c.setOff(true)
		condtest.WaitFor(t, 10*time.Second, "no_vehicle again", func() bool { return d.Stats().State == StateNoVehicle })
	}
}

func TestUnplugReplug(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "obd")
	c := partialCar()
	sim := newELMSim(t, c, clone{})
	if err := os.Symlink(sim.path(), link); err != nil {
		t.Fatal(err)
	}
	d, _ := New("car", fastOpts(link))
	var col driverstest.Recorder
	driverstest.Start(t, d, col.Emit)
	condtest.WaitFor(t, 10*time.Second, "samples", func() bool { return len(col.Kind(drivers.KindVehicleOBD)) > 0 })
	sim.unplug()
	os.Remove(link)
	condtest.WaitFor(t, 10*time.Second, "disconnected", func() bool { return d.Stats().State == StateDisconnected })
	n := len(col.Kind(drivers.KindVehicleOBD))
	sim2 := newELMSim(t, c, clone{})
	if err := os.Symlink(sim2.path(), link); err != nil {
		t.Fatal(err)
	}
	condtest.WaitFor(t, 10*time.Second, "samples after replug", func() bool { return len(col.Kind(drivers.KindVehicleOBD)) > n+2 })
	if st := d.Stats(); st.Reconnect == 0 || st.State != StateOK {
		t.Errorf("stats after replug: %+v", st)
	}
	if len(col.Kind(drivers.KindVehicleVIN)) != 1 {
		t.Error("VIN read again after replug: it is once per boot")
	}
}

func TestProbe(t *testing.T) {
	d, _ := New("car", fastOpts(filepath.Join(t.TempDir(), "none")))
	if p, err := d.Probe(context.Background()); p != drivers.Skipped || !errors.Is(err, ErrNoDevice) {
		t.Errorf("absent: %v %v", p, err)
	}
	sim := newELMSim(t, partialCar(), clone{baud: 9600})
	o := fastOpts(sim.path())
	o.Bauds = []int{38400}
	d, _ = New("car", o)
	if p, err := d.Probe(context.Background()); p != drivers.Failed || !errors.Is(err, ErrNoAdapter) {
		t.Errorf("wrong baud: %v %v", p, err)
	}
	d, _ = New("car", fastOpts(sim.path()))
	if p, err := d.Probe(context.Background()); p != drivers.Loaded {
		t.Errorf("present: %v %v", p, err)
	}
}
