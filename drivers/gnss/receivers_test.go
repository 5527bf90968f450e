package gnss

// Receiver replays for the defects of issue #18. They use only the driver's
// public shape (a pty, Opts, OnFix, emitted observations read back as CBOR
// maps), so each can be run against an older driver to show it failed.

import (
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/drivers"
)

// step is one write of a replay: what a receiver prints, then how long it
// is quiet.
type step struct {
	data  string
	pause time.Duration
}

// ublox returns one 1 Hz epoch as a u-blox M8 prints it by default (RMC,
// VTG, GGA, GSA, GSV, GLL: u-blox 8/M8 Receiver Description UBX-13003221,
// "NMEA messages overview"), at t, with the sentences split into two
// bursts so a pause can be put inside the cycle.
func ublox(t time.Time, latMin float64, pause time.Duration) []step {
	hms := t.UTC().Format("150405.00")
	date := t.UTC().Format("020106")
	lat := fmt.Sprintf("52%08.5f", latMin)
	first := withSum("GNRMC,"+hms+",A,"+lat+",N,01324.29724,E,0.412,77.52,"+date+",,,A,V") + "\r\n" +
		withSum("GNVTG,77.52,T,,M,0.412,N,0.763,K,A") + "\r\n"
	second := withSum("GNGGA,"+hms+","+lat+",N,01324.29724,E,1,09,0.95,34.5,M,44.9,M,,") + "\r\n" +
		withSum("GNGSA,A,3,05,13,15,18,23,24,29,,,,,,1.61,0.95,1.30,1") + "\r\n" +
		withSum("GPGSV,2,1,07,05,41,296,39,13,29,052,35,15,69,111,42,18,36,158,40,1") + "\r\n" +
		withSum("GPGSV,2,2,07,23,18,248,31,24,56,081,44,29,09,326,25,1") + "\r\n" +
		withSum("GNGLL,"+lat+",N,01324.29724,E,"+hms+",A,A") + "\r\n"
	return []step{{first, pause}, {second, 0}}
}

// replay runs a Dev on a pty through the script at the pace it gives, then
// waits for the driver to go quiet. It returns the gnss.fix records as CBOR
// maps (what gets signed) and every epoch handed to OnFix, as maps too.
func replay(t *testing.T, set func(*Opts), script []step) (records, epochs []map[string]any, d *Dev) {
	t.Helper()
	port := newFakePort(t)
	c := &collector{}
	o := DefaultOpts()
	o.Device, o.Interval, o.OnFix = port.path(), 0, c.onFix
	if set != nil {
		set(&o)
	}
	d, err := New("gps0", &o)
	if err != nil {
		t.Fatal(err)
	}
	startDev(t, d, c)
	condtest.WaitFor(t, 5*time.Second, "port open", func() bool { return d.Stats().Connected })
	for _, s := range script {
		if _, err := port.master.Write([]byte(s.data)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(s.pause)
	}
	time.Sleep(1500 * time.Millisecond) // longer than any quiet flush
	obs, fixes := c.snapshot()
	for _, o := range obs {
		records = append(records, asMap(t, o.Data))
	}
	for _, f := range fixes {
		epochs = append(epochs, asMap(t, f))
	}
	return records, epochs, d
}

// asMap is v as a verifier sees it: encoded as the record encodes it, and
// decoded generically.
func asMap(tb testing.TB, v any) map[string]any {
	tb.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		tb.Fatalf("encode %T: %v", v, err)
	}
	var m map[string]any
	if err := cbor.Unmarshal(b, &m); err != nil {
		tb.Fatalf("decode: %v", err)
	}
	return m
}

func recTime(m map[string]any) time.Time {
	switch v := m["t"].(type) {
	case uint64:
		return time.Unix(0, int64(v)).UTC()
	case int64:
		return time.Unix(0, v).UTC()
	}
	return time.Time{}
}

func num(m map[string]any, k string) (float64, bool) {
	switch v := m[k].(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case uint64:
		return float64(v), true
	case int64:
		return float64(v), true
	}
	return 0, false
}

// onePerTime fails when two records carry the same fix time.
func onePerTime(t *testing.T, records []map[string]any) {
	t.Helper()
	seen := map[time.Time]int{}
	for _, r := range records {
		seen[recTime(r)]++
	}
	for tm, n := range seen {
		if n > 1 {
			t.Errorf("%d records signed for the epoch at %v; want one", n, tm)
		}
	}
}

var epoch0 = time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)

// A receiver that pauses 250 ms in mid-cycle (4800 baud, a loaded board)
// still gives one record per epoch, with everything it printed.
func TestReplayPauseInsideCycle(t *testing.T) {
	var script []step
	for i := 0; i < 4; i++ {
		script = append(script, ublox(epoch0.Add(time.Duration(i)*time.Second), 31.2+float64(i)/1000, 250*time.Millisecond)...)
		script[len(script)-1].pause = 500 * time.Millisecond
	}
	records, epochs, _ := replay(t, nil, script)
	if len(records) != 4 {
		t.Errorf("%d records for 4 epochs, want 4", len(records))
	}
	onePerTime(t, records)
	if len(epochs) != 4 {
		t.Errorf("OnFix saw %d epochs, want 4", len(epochs))
	}
}

// Bursts: a whole second's output in one write, the next right after.
func TestReplayBursts(t *testing.T) {
	var all string
	for i := 0; i < 3; i++ {
		for _, s := range ublox(epoch0.Add(time.Duration(i)*time.Second), 31.2, 0) {
			all += s.data
		}
	}
	records, _, _ := replay(t, nil, []step{{all, 0}})
	if len(records) != 3 {
		t.Errorf("%d records for 3 epochs, want 3", len(records))
	}
	onePerTime(t, records)
}

// A receiver whose time jumps back one second does not get a second
// position signed for a second already signed.
func TestReplayTimeBack(t *testing.T) {
	var script []step
	for _, s := range []int{0, 1, 2, 1} {
		script = append(script, ublox(epoch0.Add(time.Duration(s)*time.Second), 31.2+float64(len(script)), 0)...)
		script[len(script)-1].pause = 200 * time.Millisecond
	}
	records, _, _ := replay(t, nil, script)
	onePerTime(t, records)
	for i := 1; i < len(records); i++ {
		if !recTime(records[i]).After(recTime(records[i-1])) {
			if _, ok := records[i]["back"]; !ok {
				t.Errorf("record %d at %v is not after %v and does not say why", i, recTime(records[i]), recTime(records[i-1]))
			}
		}
	}
}

// The first epoch has only a GGA (time of day) because the port opened in
// mid-cycle: the system clock holds a wrong date, and nothing may be signed
// with it.
func TestReplayNoDateFromSystemClock(t *testing.T) {
	wrong := func() time.Time { return time.Date(2031, 5, 5, 14, 0, 0, 0, time.UTC) }
	hms := epoch0.Format("150405.00")
	script := []step{{withSum("GNGGA,"+hms+",5231.20040,N,01324.29724,E,1,09,0.95,34.5,M,44.9,M,,") + "\r\n", 300 * time.Millisecond}}
	script = append(script, ublox(epoch0.Add(time.Second), 31.2, 0)...)
	records, _, _ := replay(t, func(o *Opts) { o.Now = wrong }, script)
	for _, r := range records {
		if y := recTime(r).Year(); y != 2026 {
			t.Errorf("record signed at %v: a date the receiver never gave", recTime(r))
		}
	}
	if len(records) != 1 {
		t.Errorf("%d records, want 1 (the dated epoch)", len(records))
	}
}

// Dates: the 1024-week rollover is corrected and flagged, a date years in
// the future and a malformed date field are refused.
func TestReplayDates(t *testing.T) {
	rmc := func(date string) string {
		return withSum("GPRMC,140000.00,A,5231.20040,N,01324.29724,E,0.0,,"+date+",,,A") + "\r\n" +
			withSum("GPGGA,140000.00,5231.20040,N,01324.29724,E,1,08,1.0,34.5,M,44.9,M,,") + "\r\n"
	}
	rolled := epoch0.Add(-rolloverPeriodForTest)
	tests := []struct {
		name     string
		date     string
		want     time.Time // zero: no record
		wantWeek bool
	}{
		{name: "good", date: "301126", want: epoch0},
		{name: "week rollover", date: rolled.Format("020106"), want: epoch0, wantWeek: true},
		{name: "far future", date: "301146"},
		{name: "malformed", date: "2208-1"},
		{name: "no such day", date: "310426"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			records, _, _ := replay(t, nil, []step{{rmc(tt.date), 0}})
			if tt.want.IsZero() {
				if len(records) != 0 {
					t.Errorf("date %q signed as %v", tt.date, recTime(records[0]))
				}
				return
			}
			if len(records) != 1 || !recTime(records[0]).Equal(tt.want) {
				t.Fatalf("records %v, want one at %v", records, tt.want)
			}
			if _, ok := records[0]["wro"]; ok != tt.wantWeek {
				t.Errorf("rollover flag present %v, want %v: %v", ok, tt.wantWeek, records[0])
			}
		})
	}
}

// 1024 weeks, as the receivers with the rollover bug are off.
const rolloverPeriodForTest = 1024 * 7 * 24 * time.Hour

// A receiver that prints ZDA on its own second never hands on a
// position-less "epoch" (which would clear the location stamp).
func TestReplayZDAOtherSecond(t *testing.T) {
	var script []step
	for i := 0; i < 4; i++ {
		at := epoch0.Add(time.Duration(i) * time.Second)
		s := ublox(at, 31.2, 0)
		zda := at.Add(500 * time.Millisecond)
		s[1].data += withSum(fmt.Sprintf("GNZDA,%s,%02d,%02d,%04d,00,00", zda.Format("150405.00"), zda.Day(), zda.Month(), zda.Year())) + "\r\n"
		s[1].pause = 300 * time.Millisecond
		script = append(script, s...)
	}
	records, epochs, _ := replay(t, nil, script)
	for i, e := range epochs {
		if m, _ := num(e, "mode"); m < 2 {
			t.Errorf("epoch %d handed on without a position although the receiver had a fix: %v", i, e)
		}
	}
	if len(records) != 4 {
		t.Errorf("%d records, want 4", len(records))
	}
}

// A receiver that reports its fixes only in GLL (dated by ZDA).
func TestReplayGLLOnly(t *testing.T) {
	var script []step
	for i := 0; i < 3; i++ {
		at := epoch0.Add(time.Duration(i) * time.Second)
		hms := at.Format("150405.00")
		script = append(script, step{withSum(fmt.Sprintf("GPZDA,%s,%02d,%02d,%04d,00,00", hms, at.Day(), at.Month(), at.Year())) + "\r\n" +
			withSum("GPGLL,5231.20040,N,01324.29724,E,"+hms+",A,A") + "\r\n", 300 * time.Millisecond})
	}
	records, _, _ := replay(t, nil, script)
	if len(records) != 3 {
		t.Fatalf("%d records from a GLL-only receiver, want 3", len(records))
	}
	if lat, _ := num(records[0], "lat"); math.Abs(lat-(52+31.2004/60)) > 1e-12 {
		t.Errorf("lat %v", lat)
	}
}

// An untimed no-fix tail ("$GPRMC,,V…") must not veto the next timed
// epoch: the receiver's first real fix is signed.
func TestReplayUntimedTail(t *testing.T) {
	tail := withSum("GPRMC,,V,,,,,,,,,,N") + "\r\n" + withSum("GPGGA,,,,,,0,00,99.99,,,,,,") + "\r\n"
	script := []step{{tail, 0}}
	script = append(script, ublox(epoch0, 31.2, 0)...)
	records, _, _ := replay(t, nil, script)
	if len(records) != 1 {
		t.Errorf("%d records, want the first fix signed", len(records))
	}
}

// GGA quality 1 with 0 satellites is a receiver holding a stale solution.
func TestReplayGGAZeroSatellites(t *testing.T) {
	hms := epoch0.Format("150405.00")
	s := withSum("GPRMC,"+hms+",A,5231.20040,N,01324.29724,E,0.0,,301126,,,A") + "\r\n" +
		withSum("GPGGA,"+hms+",5231.20040,N,01324.29724,E,1,00,1.0,34.5,M,44.9,M,,") + "\r\n"
	records, _, _ := replay(t, nil, []step{{s, 0}})
	if len(records) != 0 {
		t.Errorf("signed a fix from 0 satellites: %v", records)
	}
}

// Zero is a value: a parked car's speed 0 is signed; what the receiver did
// not print (altitude without GGA, track with an empty course) is absent.
func TestReplayZeroIsNotAbsent(t *testing.T) {
	hms := epoch0.Format("150405.00")
	s := withSum("GPRMC,"+hms+",A,5231.20040,N,01324.29724,E,0.0,,301126,,,A") + "\r\n"
	records, _, _ := replay(t, nil, []step{{s, 0}})
	if len(records) != 1 {
		t.Fatalf("%d records, want 1", len(records))
	}
	r := records[0]
	if v, ok := num(r, "spd"); !ok || v != 0 {
		t.Errorf("speed 0 not signed as 0: %v", r)
	}
	for _, k := range []string{"alt", "trk", "sats", "hdop"} {
		if _, ok := r[k]; ok {
			t.Errorf("%q signed although the receiver did not report it: %v", k, r)
		}
	}
}

// A checksum-valid sentence with an impossible value (HDOP NaN or -1,
// altitude inf) is refused at the boundary and counted: it reaches no
// record and no location stamp.
func TestReplayImpossibleValues(t *testing.T) {
	for _, bad := range []string{"1,08,NaN,34.5", "1,08,-1,34.5", "1,08,1.0,inf", "1,08,1.0,-Inf"} {
		t.Run(bad, func(t *testing.T) {
			hms := epoch0.Format("150405.00")
			s := withSum("GPRMC,"+hms+",A,5231.20040,N,01324.29724,E,0.0,,301126,,,A") + "\r\n" +
				withSum("GPGGA,"+hms+",5231.20040,N,01324.29724,E,"+bad+",M,44.9,M,,") + "\r\n"
			records, epochs, _ := replay(t, nil, []step{{s, 0}})
			for _, m := range append(records, epochs...) {
				for k, v := range m {
					if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0) || (k == "hdop" && f < 0)) {
						t.Errorf("%s = %v reached the driver's output: %v", k, f, m)
					}
				}
			}
		})
	}
}

// u-blox receivers set to UBX only, with NAV-SOL and NAV-POSLLH (u-blox 6/7
// defaults) rather than NAV-PVT.
func TestReplayNAVSOLPOSLLH(t *testing.T) {
	var all []byte
	for i := 0; i < 3; i++ {
		at := epoch0.Add(time.Duration(i) * time.Second)
		all = appendUBXFrameForTest(all, 0x01, 0x06, navSOLPayload(at, 3, 0x0d, 9))
		all = appendUBXFrameForTest(all, 0x01, 0x02, navPOSLLHPayload(at, 52.52, 13.405, 34500))
	}
	records, _, _ := replay(t, func(o *Opts) { o.UBX = true }, []step{{string(all), 0}})
	if len(records) != 3 {
		t.Fatalf("%d records from NAV-SOL + NAV-POSLLH, want 3", len(records))
	}
	if lat, _ := num(records[0], "lat"); lat != 52.52 || !recTime(records[0]).Equal(epoch0) {
		t.Errorf("record %v (time %v), want 52.52 at %v", records[0], recTime(records[0]), epoch0)
	}
}

// A receiver that speaks only UBX is not told to check its baud rate.
func TestProbeUBXOnly(t *testing.T) {
	port := newFakePort(t)
	o := DefaultOpts()
	o.Device = port.path()
	d, err := New("gps0", &o)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; ; i++ {
			b := appendUBXFrameForTest(nil, 0x01, 0x06, navSOLPayload(epoch0.Add(time.Duration(i)*time.Second), 3, 0x0d, 9))
			port.master.Write(b)
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	_, perr := d.Probe(t.Context())
	if perr == nil || strings.Contains(perr.Error(), "baud") || !strings.Contains(perr.Error(), "ubx") {
		t.Errorf("probe of a UBX-only receiver with ubx off: %v; want advice to set ubx, not the baud rate", perr)
	}
}

// Rejections are logged (rate-limited), not only counted.
func TestReplayRejectionsLogged(t *testing.T) {
	var log lockedBuf
	lg := newTestLogger(&log)
	s := strings.Repeat(withSum("GPRMC,140000.00,A,5231.20040,N,01324.29724,E,0.0,,301126,,,A")[:30]+"*00\r\n", 50)
	replay(t, func(o *Opts) { o.Logger = lg }, []step{{s, 0}})
	out := log.String()
	if n := strings.Count(out, "rejected"); n != 1 {
		t.Errorf("%d log lines about rejected input for 50 bad sentences, want 1 (rate-limited):\n%s", n, out)
	}
}

// navSOLPayload builds UBX-NAV-SOL (UBX-13003221 offsets) for UTC time at.
func navSOLPayload(at time.Time, gpsFix, flags, numSV byte) []byte {
	b := make([]byte, 52)
	gps := at.Add(18 * time.Second).Sub(time.Date(1980, 1, 6, 0, 0, 0, 0, time.UTC))
	week := gps / (7 * 24 * time.Hour)
	itow := (gps - week*7*24*time.Hour) / time.Millisecond
	putU32(b[0:], uint32(itow))
	b[8], b[9] = byte(week), byte(week>>8)
	b[10], b[11] = gpsFix, flags
	b[44], b[45] = 120, 0 // pDOP 1.20
	b[47] = numSV
	return b
}

// navPOSLLHPayload builds UBX-NAV-POSLLH for UTC time at.
func navPOSLLHPayload(at time.Time, lat, lon float64, hMSLmm int32) []byte {
	b := make([]byte, 28)
	gps := at.Add(18 * time.Second).Sub(time.Date(1980, 1, 6, 0, 0, 0, 0, time.UTC))
	itow := (gps % (7 * 24 * time.Hour)) / time.Millisecond
	putU32(b[0:], uint32(itow))
	putU32(b[4:], uint32(int32(math.Round(lon*1e7))))
	putU32(b[8:], uint32(int32(math.Round(lat*1e7))))
	putU32(b[16:], uint32(hMSLmm))
	putU32(b[20:], 2500) // hAcc 2.5 m
	putU32(b[24:], 4000)
	return b
}

func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// appendUBXFrameForTest frames a UBX message (UBX-13003221 "UBX Frame
// Structure", 8-bit Fletcher checksum over class..payload).
func appendUBXFrameForTest(dst []byte, class, id byte, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, 0xB5, 0x62, class, id, byte(len(payload)), byte(len(payload)>>8))
	dst = append(dst, payload...)
	var a, c byte
	for _, x := range dst[start+2:] {
		a += x
		c += a
	}
	return append(dst, a, c)
}

var _ = drivers.KindGNSSFix

// lockedBuf is a log destination the driver's goroutine and the test share.
type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newTestLogger(w *lockedBuf) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// paced writes s as a UART at baud would deliver it (10 bits a byte), in
// the small chunks a USB-serial adapter hands over.
func paced(s string, baud int) []step {
	const chunk = 16
	per := time.Duration(chunk*10) * time.Second / time.Duration(baud)
	var out []step
	for len(s) > 0 {
		n := min(chunk, len(s))
		out = append(out, step{s[:n], per})
		s = s[n:]
	}
	return out
}

// A receiver at 4800 baud: each epoch's output takes most of the second,
// and it pauses 300 ms after RMC/VTG while it computes the rest.
func TestReplay4800Baud(t *testing.T) {
	var script []step
	for i := 0; i < 3; i++ {
		parts := ublox(epoch0.Add(time.Duration(i)*time.Second), 31.2, 0)
		script = append(script, paced(parts[0].data, 4800)...)
		script = append(script, step{"", 300 * time.Millisecond})
		script = append(script, paced(parts[1].data, 4800)...)
	}
	records, _, _ := replay(t, nil, script)
	if len(records) != 3 {
		t.Errorf("%d records for 3 epochs at 4800 baud, want 3", len(records))
	}
	onePerTime(t, records)
	for i, r := range records {
		if _, ok := r["alt"]; !ok {
			t.Errorf("record %d lacks the altitude its GGA gave: %v", i, r)
		}
	}
}

// A receiver that stamps GLL a second behind its RMC/GGA: the GLL adds
// nothing, and no record goes back in time.
func TestReplayGLLSecondApart(t *testing.T) {
	var script []step
	for i := 1; i < 4; i++ {
		at := epoch0.Add(time.Duration(i) * time.Second)
		parts := ublox(at, 31.2, 0)
		gll := withSum("GNGLL,5231.20040,N,01324.29724,E,"+at.Add(-time.Second).Format("150405.00")+",A,A") + "\r\n"
		script = append(script, step{parts[0].data + parts[1].data + gll, 300 * time.Millisecond})
	}
	records, _, _ := replay(t, nil, script)
	if len(records) != 3 {
		t.Errorf("%d records, want 3", len(records))
	}
	onePerTime(t, records)
	for i := 1; i < len(records); i++ {
		if !recTime(records[i]).After(recTime(records[i-1])) {
			t.Errorf("record %d at %v after %v", i, recTime(records[i]), recTime(records[i-1]))
		}
	}
}
