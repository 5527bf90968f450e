package energy

import (
	"bytes"
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/driverstest"
)

func TestCRC(t *testing.T) {
	// The worked example of Modbus over Serial Line v1.02 and every RTU
	// tool: read 10 holding registers from slave 1.
	got := rtuFrame(1, readPDU(fnReadHolding, 0, 10))
	if want := []byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD}; !bytes.Equal(got, want) {
		t.Fatalf("frame % x, want % x", got, want)
	}
	got[3] ^= 1
	if _, err := rtuDecode(1, got); !errors.Is(err, ErrCRC) {
		t.Errorf("corrupt frame: %v", err)
	}
	if _, err := decodeResponse(fnReadInput, 2, []byte{0x84, 0x02}); !errors.Is(err, ErrException) || !strings.Contains(err.Error(), "illegal data address") {
		t.Errorf("exception: %v", err)
	}
	if _, err := decodeResponse(fnReadInput, 2, []byte{0x04, 0x04, 0, 1}); !errors.Is(err, ErrMalformed) {
		t.Errorf("short: %v", err)
	}
}

// samples is what r recorded, as energy samples.
func samples(r *driverstest.Recorder) []drivers.EnergySample {
	var out []drivers.EnergySample
	for _, o := range r.All() {
		out = append(out, o.Data.(drivers.EnergySample))
	}
	return out
}

func run(t *testing.T, d *Dev) *driverstest.Recorder {
	t.Helper()
	r := &driverstest.Recorder{}
	driverstest.Start(t, d, r.Emit)
	return r
}

func opts(transport, where, profile string) *Opts {
	o := &Opts{Transport: transport, Profile: profile, Interval: 20 * time.Millisecond, Timeout: 200 * time.Millisecond}
	if transport == TransportTCP {
		o.Addr = where
	} else {
		o.Device = where
	}
	return o
}

func f(v float64) *float64 { return &v }

func eq(a, b *float64) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

func TestProfiles(t *testing.T) {
	tests := []struct {
		name, transport, profile string
		fill                     func(*slave)
		want                     drivers.EnergySample
	}{
		{"sdm630 rtu", TransportRTU, ProfileSDM630, sdm630,
			drivers.EnergySample{Profile: ProfileSDM630, ImportWh: f(1234500), ExportWh: f(10250), PowerW: 2824, VoltageV: 230.5, CurrentA: 12.25, FreqHz: 50}},
		{"sdm630 tcp", TransportTCP, ProfileSDM630, sdm630,
			drivers.EnergySample{Profile: ProfileSDM630, ImportWh: f(1234500), ExportWh: f(10250), PowerW: 2824, VoltageV: 230.5, CurrentA: 12.25, FreqHz: 50}},
		{"sdm120 rtu", TransportRTU, ProfileSDM120, sdm630,
			drivers.EnergySample{Profile: ProfileSDM120, ImportWh: f(1234500), ExportWh: f(10250), PowerW: 0, VoltageV: 229, CurrentA: 0, FreqHz: 50}},
		{"sunspec inverter 103 tcp", TransportTCP, ProfileSunSpec, func(s *slave) { sunspec(s, 103, inverter103()) },
			drivers.EnergySample{Profile: ProfileSunSpec, Model: 103, ExportWh: f(1234500), PowerW: 4810, VoltageV: 232, CurrentA: 21.3, FreqHz: 50.01}},
		{"sunspec meter 203 rtu", TransportRTU, ProfileSunSpec, func(s *slave) { sunspec(s, 203, meter203()) },
			drivers.EnergySample{Profile: ProfileSunSpec, Model: 203, ImportWh: f(7250000), ExportWh: f(5500000), PowerW: -3450, VoltageV: 230, CurrentA: 15, FreqHz: 49.98}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSlave(1)
			tt.fill(s)
			where := ""
			if tt.transport == TransportTCP {
				where = serveTCP(t, s)
			} else {
				where = serveRTU(t, s)
			}
			d, err := New("meter", opts(tt.transport, where, tt.profile))
			if err != nil {
				t.Fatal(err)
			}
			if p, err := d.Probe(context.Background()); p != drivers.Loaded {
				t.Fatalf("probe: %v %v", p, err)
			}
			c := run(t, d)
			condtest.WaitFor(t, 10*time.Second, "2 samples", func() bool { return len(samples(c)) >= 2 })
			got := samples(c)[1]
			w := tt.want
			near := func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
			if got.Profile != w.Profile || got.Model != w.Model || !eq(got.ImportWh, w.ImportWh) || !eq(got.ExportWh, w.ExportWh) ||
				!near(got.PowerW, w.PowerW) || !near(got.VoltageV, w.VoltageV) || !near(got.CurrentA, w.CurrentA) || !near(got.FreqHz, w.FreqHz) || got.Flags != nil {
				t.Errorf("sample %+v (import %v export %v), want %+v", got, deref(got.ImportWh), deref(got.ExportWh), w)
			}
		})
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// Faults on the line: each is counted by cause, and the next good poll
// goes through.
func TestFaults(t *testing.T) {
	s := newSlave(1)
	sdm630(s)
	path := serveRTU(t, s)

	wrongID := opts(TransportRTU, path, ProfileSDM630)
	wrongID.Slave = 7
	d, _ := New("meter", wrongID)
	p, err := d.Probe(context.Background())
	if p != drivers.Failed || !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "swap the RS-485 A and B") {
		t.Errorf("wrong slave id: %v %v", p, err)
	}

	d, _ = New("meter", opts(TransportRTU, path, ProfileSunSpec))
	if p, err := d.Probe(context.Background()); p != drivers.Failed || !errors.Is(err, ErrException) {
		t.Errorf("SunSpec profile on an Eastron meter: %v %v", p, err)
	}

	s.mu.Lock()
	s.badCRC = 2
	s.mu.Unlock()
	d, _ = New("meter", opts(TransportRTU, path, ProfileSDM630))
	c := run(t, d)
	condtest.WaitFor(t, 10*time.Second, "a sample after CRC errors", func() bool { return len(samples(c)) > 0 })
	if p, err := d.Probe(context.Background()); p != drivers.Loaded {
		t.Errorf("probe while running: %v %v", p, err) // the first poll failed on CRC: it must not decide
	}
	if st := d.Stats(); st.Errors["crc"] == 0 {
		t.Errorf("crc errors not counted: %+v", st)
	}
	s.setFloat(sdmFrequency, float32(math.NaN()))
	condtest.WaitFor(t, 10*time.Second, "a NaN refused", func() bool { return d.Stats().Errors["malformed"] > 0 })
	s.setFloat(sdmFrequency, 50)
	s.mu.Lock()
	s.silent = true
	s.mu.Unlock()
	condtest.WaitFor(t, 10*time.Second, "timeouts", func() bool { return d.Stats().Errors["timeout"] >= 2 && !d.Stats().Connected })
	s.mu.Lock()
	s.silent = false
	s.mu.Unlock()
	n := len(samples(c))
	condtest.WaitFor(t, 10*time.Second, "recovery", func() bool { return len(samples(c)) > n && d.Stats().Connected })
}

func TestCounterRollbackAndJump(t *testing.T) {
	s := newSlave(1)
	sdm630(s)
	d, _ := New("meter", opts(TransportTCP, serveTCP(t, s), ProfileSDM630))
	c := run(t, d)
	condtest.WaitFor(t, 10*time.Second, "a sample", func() bool { return len(samples(c)) > 0 })
	s.setFloat(sdmImportKWh, 900) // the meter was reset, or swapped
	condtest.WaitFor(t, 10*time.Second, "import_back", func() bool { return d.Stats().Flags["import_back"] == 1 })
	var back drivers.EnergySample
	for _, x := range samples(c) {
		if len(x.Flags) > 0 {
			back = x
			break
		}
	}
	if *back.ImportWh != 900000 || len(back.Flags) != 1 || back.Flags[0] != "import_back" {
		t.Errorf("rollback sample %+v: want the value as read, flagged", back)
	}
	s.setFloat(sdmExportKWh, 5000) // 5 MWh in 20 ms: beyond any SDM630
	condtest.WaitFor(t, 10*time.Second, "export_jump", func() bool { return d.Stats().Flags["export_jump"] == 1 })
	// A rise within the rating is not flagged.
	prev := d.Stats().Flags
	s.setFloat(sdmExportKWh, 5000.01)
	condtest.WaitFor(t, 10*time.Second, "a sample of the new reading", func() bool {
		all := samples(c)
		last := all[len(all)-1]
		return last.ExportWh != nil && *last.ExportWh > 5000000
	})
	if now := d.Stats().Flags; now["export_jump"] != prev["export_jump"] || now["export_back"] != 0 {
		t.Errorf("plausible rise flagged: %v", now)
	}
}

func TestProbeAbsent(t *testing.T) {
	d, _ := New("meter", opts(TransportRTU, filepath.Join(t.TempDir(), "ttyUSB9"), ProfileSDM630))
	if p, err := d.Probe(context.Background()); p != drivers.Skipped || !errors.Is(err, ErrNoDevice) {
		t.Errorf("no port: %v %v", p, err)
	}
	d, _ = New("meter", opts(TransportTCP, "127.0.0.1:1", ProfileSDM630))
	if p, err := d.Probe(context.Background()); p != drivers.Skipped || !errors.Is(err, ErrNoDevice) {
		t.Errorf("refused: %v %v", p, err)
	}
	if _, err := New("meter", &Opts{Profile: "sdm72"}); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("unknown profile: %v", err)
	}
}
