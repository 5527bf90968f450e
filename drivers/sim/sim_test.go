package sim

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
)

// stepClock returns a clock that starts at start and advances by step on
// every reading.
func stepClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	t := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := t
		t = t.Add(step)
		return now
	}
}

var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// collect runs a source with o (Count must be set) and returns what it
// emitted.
func collect(tb testing.TB, name string, o Opts) []drivers.Observation {
	tb.Helper()
	d, err := New(name, o)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	var got []drivers.Observation
	emit := func(_ context.Context, obs drivers.Observation) error {
		got = append(got, obs)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Run(ctx, emit); err != nil {
		tb.Fatalf("Run: %v", err)
	}
	if ctx.Err() != nil {
		tb.Fatalf("Run stopped by the test's timeout, not by Count")
	}
	if len(got) != o.Count {
		tb.Fatalf("emitted %d observations, want Count=%d", len(got), o.Count)
	}
	for i, obs := range got {
		if obs.Source != name {
			tb.Fatalf("observation %d: Source %q, want %q", i, obs.Source, name)
		}
	}
	return got
}

func testOpts(tb testing.TB, kind Kind, count int) Opts {
	tb.Helper()
	o := DefaultOpts(kind)
	o.Count = count
	o.Interval = time.Microsecond
	o.Now = stepClock(t0, time.Second)
	if kind == KindCamera {
		o.Dir = filepath.Join(tb.TempDir(), "cam")
	}
	return o
}

func TestNewRejects(t *testing.T) {
	bad := func(mod func(*Opts)) Opts {
		o := DefaultOpts(KindGNSS)
		mod(&o)
		return o
	}
	tests := []struct {
		name    string
		devName string
		o       Opts
		want    error
	}{
		{"empty name", "", DefaultOpts(KindEnv), ErrMissingOption},
		{"empty kind", "x", bad(func(o *Opts) { o.Kind = "" }), ErrMissingOption},
		{"unknown kind", "x", bad(func(o *Opts) { o.Kind = "radar" }), ErrUnknownKind},
		{"zero interval", "x", bad(func(o *Opts) { o.Interval = 0 }), ErrInvalidOption},
		{"negative interval", "x", func() Opts { o := DefaultOpts(KindCounter); o.Interval = -1; return o }(), ErrInvalidOption},
		{"negative count", "x", bad(func(o *Opts) { o.Count = -1 }), ErrInvalidOption},
		{"camera without dir", "x", DefaultOpts(KindCamera), ErrMissingOption},
		{"track without epochs", "x", bad(func(o *Opts) { o.NMEA = []byte(withChecksums("$GPTXT,01,01,02,hello*\r\n")) }), ErrNoEpochs},
		{"empty track", "x", bad(func(o *Opts) { o.NMEA = []byte{} }), ErrNoEpochs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.devName, tt.o)
			if !errors.Is(err, tt.want) {
				t.Fatalf("New: %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "sim: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	t.Run("bad checksum names the line", func(t *testing.T) {
		o := DefaultOpts(KindGNSS)
		o.NMEA = []byte("$GNGGA,101500.00,,,,,0,00,99.99,,,,,,*7D\r\n$GNRMC,101500.00,V,,,,,,,211126,,,N,V*00\r\n")
		_, err := New("x", o)
		if err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Fatalf("New: %v, want an error naming line 2", err)
		}
	})
}

func TestDefaultOptsAreValid(t *testing.T) {
	for _, k := range []Kind{KindGNSS, KindLoRa, KindEnv, KindCamera, KindCounter, KindOBD, KindEnergy} {
		t.Run(string(k), func(t *testing.T) {
			o := DefaultOpts(k)
			o.Dir = t.TempDir()
			if _, err := New("x", o); err != nil {
				t.Fatalf("New(DefaultOpts): %v", err)
			}
		})
	}
}

func TestEachKindEmitsItsData(t *testing.T) {
	tests := []struct {
		kind     Kind
		obsKind  string
		dataType any
	}{
		{KindGNSS, drivers.KindGNSSFix, drivers.Fix{}},
		{KindLoRa, drivers.KindLoRaRX, drivers.LoRaRX{}},
		{KindEnv, drivers.KindEnvSample, drivers.EnvSample{}},
		{KindCamera, drivers.KindCameraFile, drivers.CameraFile{}},
		{KindCounter, drivers.KindCounter, drivers.Counter{}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			got := collect(t, "src", testOpts(t, tt.kind, 7))
			for i, obs := range got {
				if obs.Kind != tt.obsKind {
					t.Errorf("obs %d: Kind %q, want %q", i, obs.Kind, tt.obsKind)
				}
				if reflect.TypeOf(obs.Data) != reflect.TypeOf(tt.dataType) {
					t.Errorf("obs %d: Data is %T, want %T", i, obs.Data, tt.dataType)
				}
				if want := t0.Add(time.Duration(i) * time.Second); !obs.Time.Equal(want) {
					t.Errorf("obs %d: Time %v, want the clock's %v", i, obs.Time, want)
				}
			}
		})
	}
}

func TestSeedDeterminism(t *testing.T) {
	for _, k := range []Kind{KindGNSS, KindLoRa, KindEnv, KindCamera, KindCounter, KindOBD, KindEnergy} {
		t.Run(string(k), func(t *testing.T) {
			run := func(seed int64) []drivers.Observation {
				o := testOpts(t, k, 30)
				o.Seed = seed
				got := collect(t, "src", o)
				for i := range got { // mtime is the filesystem's, not the seed's
					if cf, ok := got[i].Data.(drivers.CameraFile); ok {
						cf.MTimeUnixNano = 0
						got[i].Data = cf
					}
				}
				return got
			}
			a, b := run(7), run(7)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("two runs with the same seed differ")
			}
			if k == KindLoRa || k == KindEnv || k == KindCamera || k == KindOBD || k == KindEnergy {
				if reflect.DeepEqual(a, run(8)) {
					t.Fatalf("runs with different seeds are identical")
				}
			}
		})
	}
}

func TestCancelReturnsNilPromptly(t *testing.T) {
	for _, k := range []Kind{KindGNSS, KindLoRa, KindEnv, KindCamera, KindCounter, KindOBD, KindEnergy} {
		for _, interval := range []time.Duration{0, time.Hour} {
			if interval == 0 && k != KindCounter {
				continue
			}
			t.Run(fmt.Sprintf("%s/%v", k, interval), func(t *testing.T) {
				o := testOpts(t, k, 0)
				o.Interval = interval
				d, err := New("src", o)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				first := make(chan struct{})
				var once sync.Once
				emit := func(ctx context.Context, _ drivers.Observation) error {
					once.Do(func() { close(first) })
					return ctx.Err()
				}
				done := make(chan error, 1)
				go func() { done <- d.Run(ctx, emit) }()
				<-first
				time.Sleep(10 * time.Millisecond)
				cancel()
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("Run after cancel: %v, want nil", err)
					}
				case <-time.After(2 * time.Second):
					t.Fatal("Run did not return within 2s of cancel")
				}
			})
		}
	}
}

func TestEmitErrorStopsRun(t *testing.T) {
	d, err := New("src", testOpts(t, KindCounter, 0))
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("pipeline broke")
	err = d.Run(context.Background(), func(context.Context, drivers.Observation) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Run: %v, want it to wrap %v", err, boom)
	}
}

func TestCounter(t *testing.T) {
	got := collect(t, "load", testOpts(t, KindCounter, 1000))
	for i, obs := range got {
		if n := obs.Data.(drivers.Counter).N; n != uint64(i)+1 {
			t.Fatalf("obs %d: N=%d, want %d", i, n, i+1)
		}
	}
}

func TestCounterPacing(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		count    int
	}{
		{"10us", 10 * time.Microsecond, 20000},
		{"1ms", time.Millisecond, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOpts(t, KindCounter, tt.count)
			o.Interval = tt.interval
			start := time.Now()
			collect(t, "load", o)
			elapsed := time.Since(start)
			want := time.Duration(tt.count-1) * tt.interval
			t.Logf("%d observations at %v: %v (%.0f/s)", tt.count, tt.interval, elapsed, float64(tt.count)/elapsed.Seconds())
			if elapsed < want {
				t.Fatalf("took %v, faster than the %v the interval allows", elapsed, want)
			}
			if elapsed > 10*want {
				t.Fatalf("took %v, more than 10x the %v asked for", elapsed, want)
			}
		})
	}
}

func TestBuiltinTrack(t *testing.T) {
	fixes, err := parseTrack(builtinTrack)
	if err != nil {
		t.Fatal(err)
	}
	// internal/gentrack: 600 epochs; 4 cold-start and 30 tunnel epochs
	// without fix; 6 2D epochs after the tunnel.
	if len(fixes) != 600 {
		t.Fatalf("%d epochs, want 600", len(fixes))
	}
	count := map[drivers.FixMode]int{}
	for i, f := range fixes {
		count[f.Mode]++
		if want := time.Date(2026, 11, 21, 10, 15, i, 0, time.UTC); !f.Time().Equal(want) {
			t.Fatalf("epoch %d: time %v, want %v", i, f.Time(), want)
		}
		switch f.Mode {
		case drivers.FixNone:
			if f.HasPosition() || f.Lat != 0 || f.Lon != 0 || f.AltMSL != nil || f.SpeedMS != nil {
				t.Errorf("epoch %d without fix carries a position: %+v", i, f)
			}
		case drivers.Fix2D, drivers.Fix3D:
			if f.Lat < 52.3 || f.Lat > 52.7 || f.Lon < 13.1 || f.Lon > 13.7 {
				t.Errorf("epoch %d: %v,%v is not in Berlin", i, f.Lat, f.Lon)
			}
			if f.SpeedMS == nil || *f.SpeedMS < 0 || *f.SpeedMS > 25 || f.TrackDeg == nil || *f.TrackDeg < 0 || *f.TrackDeg >= 360 {
				t.Errorf("epoch %d: speed %v m/s, track %v°", i, f.SpeedMS, f.TrackDeg)
			}
			if f.Sats == nil || *f.Sats < 3 || f.HDOP == nil || *f.HDOP <= 0 || *f.HDOP > 5 {
				t.Errorf("epoch %d: %v sats, HDOP %v", i, f.Sats, f.HDOP)
			}
			// A 2D epoch keeps the altitude the receiver printed (held,
			// not solved), as the gnss Assembler reports it for a device.
			if (f.Mode == drivers.Fix3D && f.AltMSL == nil) || (f.AltMSL != nil && (*f.AltMSL <= 20 || *f.AltMSL >= 50)) {
				t.Errorf("epoch %d: mode %d with altitude %v", i, f.Mode, f.AltMSL)
			}
		default:
			t.Errorf("epoch %d: mode %d", i, f.Mode)
		}
	}
	want := map[drivers.FixMode]int{drivers.FixNone: 34, drivers.Fix2D: 6, drivers.Fix3D: 560}
	if !reflect.DeepEqual(count, want) {
		t.Fatalf("fix modes %v, want %v", count, want)
	}
	// Epoch 4 is the first fix, still parked.
	f := fixes[4]
	if f.Mode != drivers.Fix3D || f.SpeedMS == nil || *f.SpeedMS != 0 {
		t.Errorf("epoch 4 (parked, first fix): %+v", f)
	}
}

func TestParseTrackMerge(t *testing.T) {
	// One epoch as a u-blox prints it, then one GGA-only epoch without GSA,
	// then an RMC-only epoch; the speed is 10 knots exactly.
	track := strings.Join([]string{
		"$GNRMC,120000.00,A,5231.20048,N,01322.87113,E,10.000,45.50,010630,,,A,V*",
		"$GNGGA,120000.00,5231.20048,N,01322.87113,E,1,11,0.80,35.2,M,39.4,M,,*",
		"$GNGSA,A,3,02,05,07,09,13,15,,,,,,,1.36,0.80,1.04,1*",
		"$GNGSA,A,2,01,04,11,12,19,,,,,,,,1.36,0.80,1.04,3*",
		"$GNGGA,120001.00,4807.038,N,01131.000,W,1,05,1.50,500.0,M,47.0,M,,*",
		"$GNTXT,01,01,02,ignored*",
		"$GNRMC,120002.00,A,0030.0,S,00000.0,E,0.000,,010630,,,A,V*",
		// Receivers that keep printing the last position without a fix:
		// the status says no, so the merger must not believe the numbers.
		"$GNRMC,120003.00,V,5231.20048,N,01322.87113,E,0.000,,010630,,,N,V*",
		"$GNGGA,120004.00,5231.20048,N,01322.87113,E,0,00,99.99,35.0,M,39.4,M,,*",
		"$GNRMC,120005.00,A,5231.20048,N,01322.87113,E,0.000,,010630,,,A,V*",
		"$GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99,1*",
		"",
	}, "\r\n")
	fixes, err := parseTrack([]byte(withChecksums(track)))
	if err != nil {
		t.Fatal(err)
	}
	// The replay goes through the gnss Assembler, so the merge is the
	// device's: the first GSA of an epoch gives the fix type (3D here, with
	// its altitude), GGA's quality and GSA's DOPs are kept, and a printed
	// satellite count of 0 is reported as 0.
	want := []drivers.Fix{
		{TimeUnixNano: time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC).UnixNano(), Lat: 52.520008, Lon: 13 + 22.87113/60,
			AltMSL: drivers.F64(35.2), SpeedMS: drivers.F64(10 * 1852.0 / 3600), TrackDeg: drivers.F64(45.5), Mode: drivers.Fix3D,
			Sats: drivers.U8(11), HDOP: drivers.F64(0.8), Quality: drivers.U8(1), PDOP: drivers.F64(1.36), VDOP: drivers.F64(1.04)},
		{TimeUnixNano: time.Date(2030, 6, 1, 12, 0, 1, 0, time.UTC).UnixNano(), Lat: 48.1173, Lon: -(11 + 31.0/60),
			AltMSL: drivers.F64(500), Mode: drivers.Fix3D, Sats: drivers.U8(5), HDOP: drivers.F64(1.5), Quality: drivers.U8(1)},
		{TimeUnixNano: time.Date(2030, 6, 1, 12, 0, 2, 0, time.UTC).UnixNano(), Lat: -0.5, Mode: drivers.Fix2D,
			SpeedMS: drivers.F64(0)}, // a printed 0 is a measured speed, not an absent one
		{TimeUnixNano: time.Date(2030, 6, 1, 12, 0, 3, 0, time.UTC).UnixNano(), Mode: drivers.FixNone},
		{TimeUnixNano: time.Date(2030, 6, 1, 12, 0, 4, 0, time.UTC).UnixNano(), Mode: drivers.FixNone, Sats: drivers.U8(0)},
		{TimeUnixNano: time.Date(2030, 6, 1, 12, 0, 5, 0, time.UTC).UnixNano(), Mode: drivers.FixNone, Sats: drivers.U8(0)},
	}
	if !reflect.DeepEqual(fixes, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", fixes, want)
	}
}

// withChecksums fills in the checksum after each '*' at a line end.
func withChecksums(text string) string {
	lines := strings.Split(text, "\r\n")
	for i, l := range lines {
		if !strings.HasSuffix(l, "*") {
			continue
		}
		var cs byte
		for _, c := range []byte(l[1 : len(l)-1]) {
			cs ^= c
		}
		lines[i] = fmt.Sprintf("%s%02X", l, cs)
	}
	return strings.Join(lines, "\r\n")
}

func TestGNSSReplay(t *testing.T) {
	o := testOpts(t, KindGNSS, 650) // past the end: the track loops
	var events []string
	o.OnFix = func(f drivers.Fix) { events = append(events, fmt.Sprintf("fix %d", f.TimeUnixNano)) }
	d, err := New("gps", o)
	if err != nil {
		t.Fatal(err)
	}
	var obs []drivers.Observation
	err = d.Run(context.Background(), func(_ context.Context, ob drivers.Observation) error {
		events = append(events, fmt.Sprintf("obs %d", ob.Data.(drivers.Fix).TimeUnixNano))
		obs = append(obs, ob)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2*650 {
		t.Fatalf("%d events, want OnFix and emit for each of 650 epochs", len(events))
	}
	for i := 0; i < len(events); i += 2 {
		if f, o := events[i], events[i+1]; f != "fix"+o[3:] {
			t.Fatalf("event %d: %q then %q, want OnFix before emit of the same fix", i, f, o)
		}
	}
	track := d.epochs
	for i, ob := range obs {
		f := ob.Data.(drivers.Fix)
		if !f.Time().Equal(ob.Time) || !ob.Time.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("epoch %d: fix time %v, observation %v: want both the clock's %v", i, f.Time(), ob.Time, t0.Add(time.Duration(i)*time.Second))
		}
		want := track[i%len(track)]
		want.TimeUnixNano = f.TimeUnixNano
		if f != want {
			t.Fatalf("epoch %d: %+v, want track epoch %d %+v", i, f, i%len(track), want)
		}
	}
}

func TestLoRa(t *testing.T) {
	o := testOpts(t, KindLoRa, 400)
	o.Now = stepClock(t0, 37*time.Second) // 400 frames span 4.1 h: tmst wraps
	got := collect(t, "gw", o)
	freqs := map[uint64]bool{}
	for _, c := range eu868 {
		freqs[c.freqHz] = true
	}
	lastFCnt := map[string]uint32{}
	wraps, lorawan := 0, 0
	for i, ob := range got {
		rx := ob.Data.(drivers.LoRaRX)
		if !freqs[rx.FreqHz] || eu868[rx.Chan].freqHz != rx.FreqHz {
			t.Errorf("frame %d: %d Hz on chan %d", i, rx.FreqHz, rx.Chan)
		}
		if rx.SF < 7 || rx.SF > 12 || rx.BWHz != 125000 || rx.DataRate != fmt.Sprintf("SF%dBW125", rx.SF) || rx.Mod != "LORA" {
			t.Errorf("frame %d: SF%d BW %d datr %q mod %q", i, rx.SF, rx.BWHz, rx.DataRate, rx.Mod)
		}
		if rx.RSSI < -125 || rx.RSSI > -40 || rx.SNR < snrFloor[rx.SF] || rx.SNR > 13.5 {
			t.Errorf("frame %d: RSSI %v SNR %v at SF%d", i, rx.RSSI, rx.SNR, rx.SF)
		}
		if len(rx.SHA256) != sha256.Size || rx.Size < 8 || rx.Size > 255 || rx.Gateway != GatewayEUI {
			t.Errorf("frame %d: sha %x size %d gw %q", i, rx.SHA256, rx.Size, rx.Gateway)
		}
		if i > 0 {
			prev := got[i-1].Data.(drivers.LoRaRX).Tmst
			if rx.Tmst-prev != uint32(37e6) {
				t.Errorf("frame %d: tmst %d after %d, want +37e6 µs modulo 2^32", i, rx.Tmst, prev)
			}
			if rx.Tmst < prev {
				wraps++
			}
		}
		if rx.DevAddr != "" {
			lorawan++
			if rx.FCnt == nil || len(rx.DevAddr) != 8 || (!strings.HasPrefix(rx.DevAddr, "26") && !strings.HasPrefix(rx.DevAddr, "27")) {
				t.Fatalf("frame %d: data frame with DevAddr %q FCnt %v", i, rx.DevAddr, rx.FCnt)
			}
			if last, ok := lastFCnt[rx.DevAddr]; ok && *rx.FCnt != last+1 {
				t.Errorf("frame %d: %s FCnt %d after %d", i, rx.DevAddr, *rx.FCnt, last)
			}
			lastFCnt[rx.DevAddr] = *rx.FCnt
		}
	}
	if wraps < 3 {
		t.Errorf("tmst wrapped %d times over 4.1 h, want 3", wraps)
	}
	if lorawan < len(got)/2 || lorawan == len(got) {
		t.Errorf("%d of %d frames are LoRaWAN data: want most, not all", lorawan, len(got))
	}
}

func TestEnv(t *testing.T) {
	o := testOpts(t, KindEnv, 24*60)
	o.Now = stepClock(t0, time.Minute) // one day
	got := collect(t, "bme", o)
	var prev drivers.EnvSample
	minT, maxT := math.Inf(1), math.Inf(-1)
	for i, ob := range got {
		s := ob.Data.(drivers.EnvSample)
		if s.Chip != "bme280" || s.HumidityPct == nil {
			t.Fatalf("sample %d: %+v", i, s)
		}
		if s.TempC < -10 || s.TempC > 40 || s.PressurePa < 95000 || s.PressurePa > 106000 || *s.HumidityPct < 0 || *s.HumidityPct > 100 {
			t.Errorf("sample %d out of range: %v °C %v Pa %v %%", i, s.TempC, s.PressurePa, *s.HumidityPct)
		}
		if i > 0 && (math.Abs(s.TempC-prev.TempC) > 0.3 || math.Abs(s.PressurePa-prev.PressurePa) > 20) {
			t.Errorf("sample %d jumps: %v → %v °C, %v → %v Pa", i, prev.TempC, s.TempC, prev.PressurePa, s.PressurePa)
		}
		minT, maxT = min(minT, s.TempC), max(maxT, s.TempC)
		prev = s
	}
	if maxT-minT < 5 {
		t.Errorf("temperature spans %v..%v °C over a day: want a daily cycle", minT, maxT)
	}
}

func TestCamera(t *testing.T) {
	o := testOpts(t, KindCamera, KeepFiles+5)
	// An earlier run's segment counts towards KeepFiles; other files are
	// not the simulator's to delete.
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"20000101_000000_0001.mp4", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(o.Dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got := collect(t, "dashcam", o)
	for i, ob := range got {
		cf := ob.Data.(drivers.CameraFile)
		if !segmentName.MatchString(cf.Name) || !strings.HasPrefix(cf.Name, ob.Time.UTC().Format("20060102_150405_")) {
			t.Errorf("segment %d: name %q", i, cf.Name)
		}
		if cf.Size < 64<<10 || cf.Size > 256<<10 {
			t.Errorf("segment %d: %d bytes", i, cf.Size)
		}
		if i < len(got)-KeepFiles {
			continue // deleted by now
		}
		data, err := os.ReadFile(filepath.Join(o.Dir, cf.Name))
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		sum := sha256.Sum256(data)
		if int64(len(data)) != cf.Size || string(sum[:]) != string(cf.SHA256) || string(data[4:8]) != "ftyp" {
			t.Errorf("segment %d: file does not match its observation", i)
		}
		st, err := os.Stat(filepath.Join(o.Dir, cf.Name))
		if err != nil || st.ModTime().UnixNano() != cf.MTimeUnixNano {
			t.Errorf("segment %d: mtime %v, observed %d", i, st.ModTime(), cf.MTimeUnixNano)
		}
	}
	entries, err := os.ReadDir(o.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != KeepFiles+1 || names[len(names)-1] != "notes.txt" || names[0] == "20000101_000000_0001.mp4" {
		t.Fatalf("dir holds %v: want the last %d segments and notes.txt", names, KeepFiles)
	}
}

func FuzzParseTrack(f *testing.F) {
	f.Add(builtinTrack[:2000])
	f.Add([]byte(withChecksums("$GNRMC,120000.00,A,5231.20048,N,01322.87113,E,10.000,45.50,010630,,,A,V*\r\n")))
	f.Add([]byte(withChecksums("$GNGGA,120001.00,4807.038,N,01131.000,W,1,05,1.50,500.0,M,47.0,M,,*\r\n$GNGSA,A,3,,,,,,,,,,,,,1,1,1,1*")))
	f.Fuzz(func(t *testing.T, text []byte) {
		fixes, err := parseTrack(text)
		if err != nil {
			return
		}
		for _, fx := range fixes {
			if !fx.HasPosition() && (fx.Lat != 0 || fx.Lon != 0) {
				t.Fatalf("fix without position carries %v,%v", fx.Lat, fx.Lon)
			}
			if fx.Lat < -90 || fx.Lat > 90 || fx.Lon < -180 || fx.Lon > 180 {
				t.Fatalf("position %v,%v out of range", fx.Lat, fx.Lon)
			}
		}
	})
}

// The simulated car says who it is and what is stored before sampling, as
// drivers/obd does; the simulated meter's counters never run backwards.
func TestVehicleAndEnergy(t *testing.T) {
	got := collect(t, "car", testOpts(t, KindOBD, 40))
	if got[0].Kind != drivers.KindVehicleVIN || got[1].Kind != drivers.KindVehicleDTC {
		t.Fatalf("first kinds %s, %s", got[0].Kind, got[1].Kind)
	}
	prevOdo := 0.0
	for _, o := range got[2:] {
		s, ok := o.Data.(drivers.VehicleOBD)
		if !ok || s.SpeedKmh == nil || *s.SpeedKmh < 0 || *s.RPM < 700 || *s.OdometerKm < prevOdo {
			t.Fatalf("sample %+v", o.Data)
		}
		prevOdo = *s.OdometerKm
	}
	got = collect(t, "meter", testOpts(t, KindEnergy, 60))
	var prev drivers.EnergySample
	for i, o := range got {
		s := o.Data.(drivers.EnergySample)
		if i > 0 && (*s.ImportWh < *prev.ImportWh || *s.ExportWh < *prev.ExportWh || len(s.Flags) > 0) {
			t.Fatalf("sample %d: %+v after %+v", i, s, prev)
		}
		prev = s
	}
}
