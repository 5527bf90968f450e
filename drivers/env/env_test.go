package env

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/edge-agent/edge-agent/backoff"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/driverstest"
)

// calib holds the trimming parameters of datasheet section 4.2.2, table 16.
type calib struct {
	t1                             uint16
	t2, t3                         int16
	p1                             uint16
	p2, p3, p4, p5, p6, p7, p8, p9 int16
	h1                             uint8
	h2                             int16
	h3                             uint8
	h4, h5                         int16 // 12-bit signed
	h6                             int8
}

// bmp280Example is the worked example of the BMP280 datasheet (section 3.12,
// "compensation formula"), which states T = 25.08 °C and p = 100653.27 Pa
// for adc_T = 519888 and adc_P = 415148. The BME280 uses the same
// temperature and pressure formulas.
var bmp280Example = calib{
	t1: 27504, t2: 26435, t3: -1000,
	p1: 36477, p2: -10685, p3: 3024, p4: 2855, p5: 140, p6: -7, p7: 15500, p8: -14600, p9: 6000,
}

// bme280Typical adds humidity parameters in the range real parts report.
var bme280Typical = func() calib {
	c := bmp280Example
	c.h1, c.h2, c.h3, c.h4, c.h5, c.h6 = 75, 362, 0, 313, 50, 30
	return c
}()

// regs88 encodes 0x88..0xA1 (26 bytes, little endian words; 0xA0 unused;
// 0xA1 is dig_H1), datasheet 4.2.2.
func (c calib) regs88() []byte {
	b := make([]byte, 0, 26)
	for _, w := range []uint16{c.t1, uint16(c.t2), uint16(c.t3), c.p1, uint16(c.p2), uint16(c.p3),
		uint16(c.p4), uint16(c.p5), uint16(c.p6), uint16(c.p7), uint16(c.p8), uint16(c.p9)} {
		b = append(b, byte(w), byte(w>>8))
	}
	return append(b, 0x00, c.h1)
}

// regsE1 encodes 0xE1..0xE7, datasheet 4.2.2: dig_H4 is 0xE4[7:0]/0xE5[3:0]
// and dig_H5 is 0xE5[7:4]/0xE6[7:0].
func (c calib) regsE1() []byte {
	return []byte{
		byte(c.h2), byte(uint16(c.h2) >> 8),
		c.h3,
		byte(c.h4 >> 4), byte(c.h4&0x0F) | byte(c.h5&0x0F)<<4,
		byte(c.h5 >> 4),
		byte(c.h6),
	}
}

// dataRegs encodes 0xF7..0xFE, datasheet 5.4.7 to 5.4.9: 20-bit pressure and
// temperature, msb first, xlsb in bits 7:4; 16-bit humidity.
func dataRegs(adcP, adcT, adcH int32, bme bool) []byte {
	b := []byte{
		byte(adcP >> 12), byte(adcP >> 4), byte(adcP<<4) & 0xF0,
		byte(adcT >> 12), byte(adcT >> 4), byte(adcT<<4) & 0xF0,
	}
	if bme {
		b = append(b, byte(adcH>>8), byte(adcH))
	}
	return b
}

// osrs is the register code for an oversampling factor, datasheet 5.4.3/5.4.5.
func osrs(n int) byte {
	return map[int]byte{1: 1, 2: 2, 4: 3, 8: 4, 16: 5}[n]
}

// initOps is what bringing the chip up costs on the wire: our id check, then
// bmxx80's id read, trimming readout and configuration, all at addr.
func initOps(addr uint16, id byte, c calib, os int) []i2ctest.IO {
	sleepMeas := osrs(os)<<5 | osrs(os)<<2 // ctrl_meas 0xF4, mode 00 = sleep (5.4.5)
	ops := []i2ctest.IO{
		{Addr: addr, W: []byte{0xD0}, R: []byte{id}},
		{Addr: addr, W: []byte{0xD0}, R: []byte{id}},
		{Addr: addr, W: []byte{0x88}, R: c.regs88()},
	}
	if id == chipIDBME280 {
		ops = append(ops,
			i2ctest.IO{Addr: addr, W: []byte{0xE1}, R: c.regsE1()},
			// ctrl_hum (5.4.3) only takes effect after a ctrl_meas write, so
			// ctrl_meas comes last; config 0xF5 = t_sb 1 s, filter off (5.4.6).
			i2ctest.IO{Addr: addr, W: []byte{0xF4, sleepMeas, 0xF2, osrs(os), 0xF5, 0xA0, 0xF4, sleepMeas}})
	} else {
		ops = append(ops, i2ctest.IO{Addr: addr, W: []byte{0xF4, sleepMeas, 0xF5, 0xA0, 0xF4, sleepMeas}})
	}
	return ops
}

// readOps is one forced-mode reading: start, status (5.4.4: bit 3 "measuring"
// clear), then a burst read of all data registers so they come from the same
// conversion (datasheet 4 and 5.4.7).
func readOps(addr uint16, os int, data []byte) []i2ctest.IO {
	return []i2ctest.IO{
		{Addr: addr, W: []byte{0xF4, osrs(os)<<5 | osrs(os)<<2 | 0x01}},
		{Addr: addr, W: []byte{0xF3}, R: []byte{0x00}},
		{Addr: addr, W: []byte{0xF7}, R: data},
	}
}

// compensate applies the double precision formulas of BME280 datasheet
// section 8.1 (the floating point form of 4.2.3), independently of the code
// under test.
func compensate(c calib, adcT, adcP, adcH int32) (tempC, pressPa, humPct float64) {
	var1 := (float64(adcT)/16384.0 - float64(c.t1)/1024.0) * float64(c.t2)
	var2 := (float64(adcT)/131072.0 - float64(c.t1)/8192.0) * (float64(adcT)/131072.0 - float64(c.t1)/8192.0) * float64(c.t3)
	tFine := float64(int32(var1 + var2))
	tempC = (var1 + var2) / 5120.0

	var1 = tFine/2.0 - 64000.0
	var2 = var1 * var1 * float64(c.p6) / 32768.0
	var2 = var2 + var1*float64(c.p5)*2.0
	var2 = var2/4.0 + float64(c.p4)*65536.0
	var1 = (float64(c.p3)*var1*var1/524288.0 + float64(c.p2)*var1) / 524288.0
	var1 = (1.0 + var1/32768.0) * float64(c.p1)
	p := 1048576.0 - float64(adcP)
	p = (p - var2/4096.0) * 6250.0 / var1
	var1 = float64(c.p9) * p * p / 2147483648.0
	var2 = p * float64(c.p8) / 32768.0
	pressPa = p + (var1+var2+float64(c.p7))/16.0

	h := tFine - 76800.0
	h = (float64(adcH) - (float64(c.h4)*64.0 + float64(c.h5)/16384.0*h)) *
		(float64(c.h2) / 65536.0 * (1.0 + float64(c.h6)/67108864.0*h*(1.0+float64(c.h3)/67108864.0*h)))
	h = h * (1.0 - float64(c.h1)*h/524288.0)
	humPct = min(max(h, 0), 100)
	return tempC, pressPa, humPct
}

// runFor runs d until it has emitted n observations, failing after a timeout.
func runFor(tb testing.TB, d *Dev, n int) []drivers.Observation {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var c driverstest.Recorder
	c.After(n, cancel)
	if err := d.Run(ctx, c.Emit); err != nil {
		tb.Fatalf("Run: %v", err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		tb.Fatalf("Run: timed out after %d of %d observations", c.Len(), n)
	}
	return c.All()
}

func closePlayback(tb testing.TB, p *i2ctest.Playback) {
	tb.Helper()
	if err := p.Close(); err != nil {
		tb.Errorf("transcript not fully replayed: %v", err)
	}
}

func TestReadingMatchesDatasheetFormulas(t *testing.T) {
	fixed := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name             string
		id               byte
		addr             uint16
		os               int
		c                calib
		adcT, adcP, adcH int32
		wantChip         string
	}{
		{"bmp280 datasheet example", chipIDBMP280, 0x76, 1, bmp280Example, 519888, 415148, 0, ChipBMP280},
		{"bme280 room", chipIDBME280, 0x77, 4, bme280Typical, 519888, 415148, 30000, ChipBME280},
		{"bme280 cold and humid", chipIDBME280, 0x76, 16, bme280Typical, 400000, 350000, 36000, ChipBME280},
		{"bme280 hot and dry", chipIDBME280, 0x76, 2, bme280Typical, 600000, 450000, 22000, ChipBME280},
		{"bme280 8x", chipIDBME280, 0x76, 8, bme280Typical, 500000, 300000, 32000, ChipBME280},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bme := tt.id == chipIDBME280
			ops := initOps(tt.addr, tt.id, tt.c, tt.os)
			ops = append(ops, readOps(tt.addr, tt.os, dataRegs(tt.adcP, tt.adcT, tt.adcH, bme))...)
			p := &i2ctest.Playback{Ops: ops, DontPanic: true}
			d, err := NewWithBus("env0", p, &Opts{Addr: tt.addr, Oversampling: tt.os, Interval: time.Hour, Now: func() time.Time { return fixed }})
			if err != nil {
				t.Fatal(err)
			}
			obs := runFor(t, d, 1)
			closePlayback(t, p)

			o := obs[0]
			if o.Kind != drivers.KindEnvSample || o.Source != "env0" || !o.Time.Equal(fixed) {
				t.Errorf("observation header = %q %q %v, want %q %q %v", o.Kind, o.Source, o.Time, drivers.KindEnvSample, "env0", fixed)
			}
			s, ok := o.Data.(drivers.EnvSample)
			if !ok {
				t.Fatalf("Data is %T, want drivers.EnvSample", o.Data)
			}
			wantT, wantP, wantH := compensate(tt.c, tt.adcT, tt.adcP, tt.adcH)
			if s.Chip != tt.wantChip {
				t.Errorf("chip = %q, want %q", s.Chip, tt.wantChip)
			}
			// The integer formulas resolve 0.01 °C, 1/256 Pa and 1/1024 %RH;
			// they round differently from the double precision ones.
			if math.Abs(s.TempC-wantT) > 0.01 {
				t.Errorf("temperature = %.4f °C, datasheet formula gives %.4f", s.TempC, wantT)
			}
			if math.Abs(s.PressurePa-wantP) > 1 {
				t.Errorf("pressure = %.3f Pa, datasheet formula gives %.3f", s.PressurePa, wantP)
			}
			switch {
			case !bme && s.HumidityPct != nil:
				t.Errorf("humidity = %v on a BMP280, want none", *s.HumidityPct)
			case bme && s.HumidityPct == nil:
				t.Errorf("humidity missing on a BME280")
			case bme && math.Abs(*s.HumidityPct-wantH) > 0.05:
				t.Errorf("humidity = %.4f %%, datasheet formula gives %.4f", *s.HumidityPct, wantH)
			}
			last, at, ok := d.Last()
			if !ok || !at.Equal(fixed) || last.TempC != s.TempC {
				t.Errorf("Last() = %+v %v %v, want the emitted sample at %v", last, at, ok, fixed)
			}
		})
	}
}

// TestDatasheetExampleAnchors checks the reference implementation in this
// test against the figures printed in the BMP280 datasheet, so that a wrong
// formula here cannot make a wrong driver pass.
func TestDatasheetExampleAnchors(t *testing.T) {
	gotT, gotP, _ := compensate(bmp280Example, 519888, 415148, 0)
	if math.Abs(gotT-25.08) > 0.005 {
		t.Errorf("example temperature = %.4f, datasheet says 25.08", gotT)
	}
	if math.Abs(gotP-100653.27) > 0.05 {
		t.Errorf("example pressure = %.3f, datasheet says 100653.27", gotP)
	}
}

// flakyBus fails chosen transactions (counted from 1) without passing them
// on, like a bus glitch: the transcript position does not move.
type flakyBus struct {
	i2c.Bus
	mu    sync.Mutex
	n     int
	fails map[int]bool
}

func (f *flakyBus) Tx(addr uint16, w, r []byte) error {
	f.mu.Lock()
	f.n++
	fail := f.fails[f.n]
	f.mu.Unlock()
	if fail {
		return fmt.Errorf("sysfs-i2c: %w", syscall.EREMOTEIO)
	}
	return f.Bus.Tx(addr, w, r)
}

// logRecorder is a slog.Handler that keeps the messages it is given.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

func (h *logRecorder) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

func TestReadErrorsAreRetriedAndRateLimited(t *testing.T) {
	const addr = 0x76
	c := bme280Typical
	data := dataRegs(415148, 519888, 30000, true)
	// Good start and reading (tx 1-8), then the data read of the second
	// reading fails (tx 11), then three reconnects fail at the id read
	// (tx 12-14); the fourth reconnect replays the whole bring-up.
	var ops []i2ctest.IO
	ops = append(ops, initOps(addr, chipIDBME280, c, 4)...)
	ops = append(ops, readOps(addr, 4, data)...)
	ops = append(ops, readOps(addr, 4, data)[:2]...)
	ops = append(ops, initOps(addr, chipIDBME280, c, 4)...)
	ops = append(ops, readOps(addr, 4, data)...)
	p := &i2ctest.Playback{Ops: ops, DontPanic: true}
	bus := &flakyBus{Bus: p, fails: map[int]bool{11: true, 12: true, 13: true, 14: true}}
	logs := &logRecorder{}
	d, err := NewWithBus("env0", bus, &Opts{Interval: time.Millisecond, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	d.backoff = backoff.New(time.Millisecond, 4*time.Millisecond, nil)

	obs := runFor(t, d, 2)
	closePlayback(t, p)
	if len(obs) != 2 {
		t.Fatalf("got %d observations, want 2", len(obs))
	}
	// Four failures inside one minute: one warning, the rest counted.
	if n := logs.count("reading failed; retrying"); n != 1 {
		t.Errorf("logged %d read failures, want 1 (rate-limited)", n)
	}
	if n := logs.count("sensor recovered"); n != 1 {
		t.Errorf("logged recovery %d times, want 1", n)
	}
}

func TestProbe(t *testing.T) {
	tests := []struct {
		name    string
		ops     []i2ctest.IO
		want    drivers.Probe
		wantErr error
	}{
		{"bme280", []i2ctest.IO{{Addr: 0x76, W: []byte{0xD0}, R: []byte{0x60}}}, drivers.Loaded, nil},
		{"bmp280", []i2ctest.IO{{Addr: 0x76, W: []byte{0xD0}, R: []byte{0x58}}}, drivers.Loaded, nil},
		{"bmp180 is not supported", []i2ctest.IO{{Addr: 0x76, W: []byte{0xD0}, R: []byte{0x55}}}, drivers.Skipped, ErrWrongChip},
		{"another chip", []i2ctest.IO{{Addr: 0x76, W: []byte{0xD0}, R: []byte{0x61}}}, drivers.Skipped, ErrWrongChip},
		// Nothing at 0x76: the playback expects 0x77 and refuses, as a NACK would.
		{"nack", []i2ctest.IO{{Addr: 0x77, W: []byte{0xD0}, R: []byte{0x60}}}, drivers.Skipped, ErrNoChip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &i2ctest.Playback{Ops: tt.ops, DontPanic: true}
			d, err := NewWithBus("env0", p, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Probe(context.Background())
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("Probe() = %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
			if _, _, ok := d.Last(); ok {
				t.Error("Last() reports a reading after a probe")
			}
		})
	}
}

func TestRunRefusesAbsentChip(t *testing.T) {
	p := &i2ctest.Playback{Ops: []i2ctest.IO{{Addr: 0x76, W: []byte{0xD0}, R: []byte{0x00}}}, DontPanic: true}
	d, err := NewWithBus("env0", p, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Run(context.Background(), func(context.Context, drivers.Observation) error {
		t.Error("emitted an observation with no chip")
		return nil
	})
	if !errors.Is(err, ErrWrongChip) {
		t.Errorf("Run() = %v, want ErrWrongChip", err)
	}
}

func TestProbeMissingBusNode(t *testing.T) {
	d, err := New("env0", &Opts{Bus: "/dev/i2c-7"})
	if err != nil {
		t.Fatal(err)
	}
	d.devDir = t.TempDir() // an empty /dev
	got, err := d.Probe(context.Background())
	if got != drivers.Skipped || !errors.Is(err, ErrNoBus) {
		t.Errorf("Probe() = %v, %v; want skipped, ErrNoBus", got, err)
	}
}

func TestClassifyOpen(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		want     error
		outcome  drivers.Probe
		wantText string
	}{
		{"missing node", &fs.PathError{Op: "open", Path: "/dev/i2c-1", Err: syscall.ENOENT}, ErrNoBus, drivers.Skipped, "enable I²C"},
		{"permission", &fs.PathError{Op: "open", Path: "/dev/i2c-1", Err: syscall.EACCES}, ErrPermission, drivers.Failed, "add user edge-agent to group i2c"},
		{"other", &fs.PathError{Op: "open", Path: "/dev/i2c-1", Err: syscall.EIO}, syscall.EIO, drivers.Failed, "input/output error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classifyOpen("/dev/i2c-1", tt.err)
			if !errors.Is(err, tt.want) {
				t.Errorf("classifyOpen() = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("classifyOpen() = %q, want it to say %q", err, tt.wantText)
			}
			if got := probeOutcome(err); got != tt.outcome {
				t.Errorf("probeOutcome() = %v, want %v", got, tt.outcome)
			}
		})
	}
}

func TestOpts(t *testing.T) {
	tests := []struct {
		name    string
		o       *Opts
		wantErr bool
	}{
		{"nil means defaults", nil, false},
		{"bus number", &Opts{Bus: "3"}, false},
		{"bus node", &Opts{Bus: "/dev/i2c-0"}, false},
		{"bus name", &Opts{Bus: "i2c1"}, true},
		{"address 0x77", &Opts{Addr: 0x77}, false},
		{"address 0x40", &Opts{Addr: 0x40}, true},
		{"oversampling 16", &Opts{Oversampling: 16}, false},
		{"oversampling 3", &Opts{Oversampling: 3}, true},
		{"oversampling 32", &Opts{Oversampling: 32}, true},
		{"negative interval", &Opts{Interval: -time.Second}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New("env0", tt.o)
			if tt.wantErr != errors.Is(err, ErrInvalidOption) || (!tt.wantErr && err != nil) {
				t.Errorf("New() = %v, want invalid=%v", err, tt.wantErr)
			}
		})
	}
}

// BenchmarkReadCompensate measures one forced-mode reading on a replayed
// bus: the start command, the status poll, the burst read and the
// compensation. Wall time is dominated by the conversion wait bmxx80 sleeps
// (datasheet 9.1: about 8 ms at 1x); cpu-ns/op is the processor's share.
func BenchmarkReadCompensate(b *testing.B) {
	for _, os := range []int{1, 4} {
		b.Run(fmt.Sprintf("oversampling=%d", os), func(b *testing.B) {
			c := bme280Typical
			ops := initOps(0x76, chipIDBME280, c, os)
			for range b.N {
				ops = append(ops, readOps(0x76, os, dataRegs(415148, 519888, 30000, true))...)
			}
			p := &i2ctest.Playback{Ops: ops, DontPanic: true}
			d, err := NewWithBus("env0", p, &Opts{Oversampling: os})
			if err != nil {
				b.Fatal(err)
			}
			s, err := d.connect(p)
			if err != nil {
				b.Fatal(err)
			}
			var before, after syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			b.ResetTimer()
			for range b.N {
				if _, err := s.read(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}
