package gnss

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// testNow is the system clock of the tests; it dates nothing.
var testNow = func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// testFloor lets the fixtures, written from 1990s receiver manuals, keep
// their dates.
var testFloor, testCeiling = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)

func TestParseDM(t *testing.T) {
	ratDeg := func(tb testing.TB, deg int64, mins string) float64 {
		tb.Helper()
		r, ok := new(big.Rat).SetString(mins)
		if !ok {
			tb.Fatalf("bad minutes %q", mins)
		}
		r.Quo(r, big.NewRat(60, 1)).Add(r, big.NewRat(deg, 1))
		f, _ := r.Float64()
		return f
	}
	tests := []struct {
		name, field, hemi string
		max               int64
		want              float64
		wantErr           bool
	}{
		{name: "nmea example lat", field: "4807.038", hemi: "N", max: 90, want: ratDeg(t, 48, "07.038")},
		{name: "nmea example lon", field: "01131.000", hemi: "E", max: 180, want: ratDeg(t, 11, "31")},
		{name: "south", field: "3751.65", hemi: "S", max: 90, want: -ratDeg(t, 37, "51.65")},
		{name: "west 5 decimals", field: "00007.50300", hemi: "W", max: 180, want: -ratDeg(t, 0, "7.503")},
		{name: "unpadded degrees", field: "807.5", hemi: "N", max: 90, want: ratDeg(t, 8, "7.5")},
		// Double rounding in ParseFloat-then-subtract gets this one wrong.
		{name: "many digits", field: "5229.4166666667", hemi: "N", max: 90, want: ratDeg(t, 52, "29.4166666667")},
		{name: "beyond 2^53 uses big", field: "17959.999999999999", hemi: "E", max: 180, want: ratDeg(t, 179, "59.999999999999")},
		{name: "no fraction", field: "4807", hemi: "N", max: 90, want: ratDeg(t, 48, "7")},
		{name: "pole", field: "9000.000", hemi: "S", max: 90, want: -90},
		{name: "beyond pole", field: "9000.001", hemi: "N", max: 90, wantErr: true},
		{name: "minutes 60", field: "4860.000", hemi: "N", max: 90, wantErr: true},
		{name: "lat hemisphere on lon", field: "01131.000", hemi: "N", max: 180, wantErr: true},
		{name: "letters", field: "48O7.038", hemi: "N", max: 90, wantErr: true},
		{name: "too short", field: "07.0", hemi: "N", max: 90, wantErr: true},
		{name: "empty hemisphere", field: "4807.038", hemi: "", max: 90, wantErr: true},
		// From the simulator's former private parser, whose tracks this one reads now.
		{name: "sim track lat", field: "5231.20048", hemi: "N", max: 90, want: 52.520008},
		{name: "sim near antimeridian", field: "17959.99994", hemi: "E", max: 180, want: 179.999999},
		{name: "sim south", field: "0030.0", hemi: "S", max: 90, want: -0.5},
		{name: "sim west no fraction", field: "01130", hemi: "W", max: 180, want: -11.5},
		{name: "sim trailing dot", field: "4807.", hemi: "N", max: 90, want: 48 + 7.0/60},
		{name: "sim minutes 60", field: "5260.0", hemi: "N", max: 90, wantErr: true},
		{name: "sim letter", field: "52a1.0", hemi: "N", max: 90, wantErr: true},
		{name: "sim bad hemisphere", field: "5231.0", hemi: "X", max: 90, wantErr: true},
		{name: "sim negative minutes", field: "5231.-1", hemi: "N", max: 90, wantErr: true},
		{name: "sim exponent", field: "4807.0e-999999999", hemi: "N", max: 90, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDM(tt.field, tt.hemi, tt.max)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseDM(%q, %q) error = %v, want error %v", tt.field, tt.hemi, err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("parseDM(%q, %q) = %.17g, want %.17g (the nearest float64)", tt.field, tt.hemi, got, tt.want)
			}
		})
	}
}

func TestParseTOD(t *testing.T) {
	tests := []struct {
		name, in string
		want     time.Duration
		wantErr  bool
	}{
		{name: "whole", in: "123519", want: 12*time.Hour + 35*time.Minute + 19*time.Second},
		{name: "centis", in: "000000.25", want: 250 * time.Millisecond},
		{name: "no ms rounding up", in: "235959.9996", want: 23*time.Hour + 59*time.Minute + 59*time.Second + 999600*time.Microsecond},
		{name: "leap second", in: "235960.00", want: 24 * time.Hour},
		{name: "hour 24", in: "240000", wantErr: true},
		{name: "short", in: "1235", wantErr: true},
		{name: "comma", in: "123519,0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTOD(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseTOD(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr && time.Duration(got) != tt.want {
				t.Errorf("parseTOD(%q) = %v, want %v", tt.in, time.Duration(got), tt.want)
			}
		})
	}
}

func TestAssemblerFeedErrors(t *testing.T) {
	tests := []struct {
		name string
		line string
		want error
	}{
		{name: "bad checksum", line: "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6B", want: ErrBadChecksum},
		{name: "no checksum", line: "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W", want: ErrNoChecksum},
		{name: "binary", line: "$GPRMC,12\xb5\x62", want: ErrGarbled},
		{name: "no dollar", line: "GPRMC,123519*00", want: ErrGarbled},
		{name: "proprietary", line: withSum("PGRME,15.0,M,45.0,M,25.0,M"), want: ErrUnknown},
		{name: "other type", line: "$GPTXT,01,01,02,ANTSTATUS=OK*3B", want: ErrUnknown},
		{name: "bad field", line: withSum("GPGGA,123519,4807.038,N,01131.000,E,X,08,0.9,545.4,M,46.9,M,,"), want: ErrGarbled},
		{name: "truncated fields", line: withSum("GPGGA,123519,4807.038,N"), want: ErrGarbled},
		{name: "ok", line: "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAssembler()
			_, complete, err := a.Feed([]byte(tt.line))
			if complete {
				t.Errorf("first line completed an epoch")
			}
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Feed(%q) error = %v, want %v", tt.line, err, tt.want)
			}
		})
	}
}

// withSum frames an NMEA body with its checksum.
func withSum(body string) string {
	var c byte
	for i := 0; i < len(body); i++ {
		c ^= body[i]
	}
	const hex = "0123456789ABCDEF"
	return "$" + body + "*" + string(hex[c>>4]) + string(hex[c&15])
}

func TestAssemblerStandardExample(t *testing.T) {
	fixes, _ := decodeAll(t, readFile(t, "standard.nmea"), false)
	if len(fixes) != 2 {
		t.Fatalf("got %d epochs, want 2", len(fixes))
	}
	want := drivers.Fix{
		TimeUnixNano: time.Date(1994, 3, 23, 12, 35, 19, 0, time.UTC).UnixNano(),
		Lat:          float64(48*60000+7038) / 60000,
		Lon:          float64(11*60000+31000) / 60000,
		AltMSL:       drivers.F64(545.4),
		SpeedMS:      drivers.F64(22.4 * 1852 / 3600),
		TrackDeg:     drivers.F64(84.4),
		Mode:         drivers.Fix3D,
		Sats:         drivers.U8(8),
		HDOP:         drivers.F64(0.9),
		Quality:      drivers.U8(1),
		PDOP:         drivers.F64(2.5),
		VDOP:         drivers.F64(2.1),
	}
	if !reflect.DeepEqual(fixes[0], want) {
		t.Errorf("epoch 1 = %s\nwant      %s", fixJSON(fixes[0]), fixJSON(want))
	}
}

func TestAssemblerNoFixHasNoPosition(t *testing.T) {
	fixes, _ := decodeAll(t, readFile(t, "nofix.nmea"), false)
	var withPos []string
	for _, f := range fixes {
		if f.Mode < drivers.Fix2D && (f.Lat != 0 || f.Lon != 0 || f.AltMSL != nil) {
			t.Errorf("no-fix epoch %v carries a position: %+v", f.Time(), f)
		}
		if f.HasPosition() {
			withPos = append(withPos, f.Time().Format("15:04:05"))
		}
	}
	// Only 08:18:42 has RMC A (mode A) and GGA quality 1 with nothing
	// saying otherwise.
	if got := strings.Join(withPos, ","); got != "08:18:42" {
		t.Errorf("epochs with a position = %q, want %q", got, "08:18:42")
	}
}

func TestAssemblerMidnightAndDate(t *testing.T) {
	fixes, _ := decodeAll(t, readFile(t, "multignss.nmea"), false)
	if len(fixes) != 6 {
		t.Fatalf("got %d epochs, want 6", len(fixes))
	}
	for i, f := range fixes {
		want := time.Date(2025, 12, 31, 23, 59, 57+i, 0, time.UTC)
		if !f.Time().Equal(want) {
			t.Errorf("epoch %d time = %v, want %v (date carried over midnight)", i, f.Time(), want)
		}
		if f.Sats == nil || *f.Sats != 14 {
			t.Errorf("epoch %d sats = %v, want 14 (GNS count beats GGA's 12-cap)", i, f.Sats)
		}
	}
}

// navPVT builds a NAV-PVT payload (UBX-18010854 §5.14.11 offsets).
func navPVT(tb testing.TB, at time.Time, fixType, flags byte, lat, lon float64, hMSLmm int32, numSV byte) []byte {
	tb.Helper()
	b := make([]byte, navPVTLen)
	le := binary.LittleEndian
	le.PutUint16(b[4:], uint16(at.Year()))
	b[6], b[7], b[8], b[9], b[10] = byte(at.Month()), byte(at.Day()), byte(at.Hour()), byte(at.Minute()), byte(at.Second())
	b[11] = 0x07 // validDate, validTime, fullyResolved
	le.PutUint32(b[16:], uint32(int32(at.Nanosecond())))
	b[20], b[21], b[23] = fixType, flags, numSV
	le.PutUint32(b[24:], uint32(int32(math.Round(lon*1e7))))
	le.PutUint32(b[28:], uint32(int32(math.Round(lat*1e7))))
	le.PutUint32(b[36:], uint32(hMSLmm))
	le.PutUint32(b[60:], uint32(int32(1234)))    // 1.234 m/s
	le.PutUint32(b[64:], uint32(int32(9000000))) // 90 degrees
	return b
}

// ubxStream interleaves NAV-PVT frames with NMEA, as a u-blox receiver with
// both outputs enabled does, plus a damaged frame and another UBX message.
func ubxStream(tb testing.TB) []byte {
	tb.Helper()
	t0 := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	var s []byte
	s = appendNAVPVTFrame(s, navPVT(tb, t0, 3, 1, 47.3977419, 8.5455938, 408123, 11))
	s = append(s, withSum("GNGGA,100000.00,4723.86451,N,00832.73563,E,1,11,0.80,408.1,M,47.4,M,,")+"\r\n"...)
	// Epoch 2: NAV-PVT only, solution time 3 µs before the second.
	s = appendNAVPVTFrame(s, navPVT(tb, t0.Add(time.Second-3*time.Microsecond), 2, 1, 47.3977500, 8.5456000, 0, 4))
	// A NAV-STATUS (0x01 0x03) frame: well formed, not used.
	st := []byte{ubxSync1, ubxSync2, 0x01, 0x03, 2, 0, 0xAA, 0xBB}
	ca, cb := ubxChecksum(st[2:])
	s = append(s, append(st, ca, cb)...)
	// Epoch 3: fix type 3 but gnssFixOK clear: no position.
	s = appendNAVPVTFrame(s, navPVT(tb, t0.Add(2*time.Second), 3, 0, 47.3977600, 8.5456100, 408000, 3))
	// A frame with a broken checksum: skipped, and the NMEA after it still reads.
	bad := appendNAVPVTFrame(nil, navPVT(tb, t0.Add(3*time.Second), 3, 1, 1, 1, 0, 9))
	bad[len(bad)-1] ^= 0xFF
	s = append(s, bad...)
	s = append(s, withSum("GNRMC,100003.00,A,4723.86500,N,00832.73600,E,0.5,10.0,010726,,,A,V")+"\r\n"...)
	return s
}

func TestDecoderUBX(t *testing.T) {
	fixes, counts := decodeAll(t, ubxStream(t), true)
	if counts.UBXFrames != 3 || counts.BadChecksum != 1 || counts.UBXOther != 1 {
		t.Errorf("counts = %+v, want 3 NAV-PVT, 1 bad checksum, 1 unknown", counts)
	}
	if len(fixes) != 4 {
		t.Fatalf("got %d epochs, want 4: %+v", len(fixes), fixes)
	}
	// Epoch 1 merges NAV-PVT and GGA: GGA's position wins, the mode comes
	// from NAV-PVT since there is no GSA.
	if f := fixes[0]; f.Lat != float64(47*6000000+2386451)/6000000 || f.Mode != drivers.Fix3D || f.SpeedMS == nil || *f.SpeedMS != 1.234 {
		t.Errorf("epoch 1 = %+v", f)
	}
	if f := fixes[1]; f.Mode != drivers.Fix2D || f.Lat != 47.39775 || f.Time().Nanosecond() != 0 {
		t.Errorf("epoch 2 = %+v (time %v)", f, f.Time())
	}
	if f := fixes[2]; f.HasPosition() || f.Lat != 0 {
		t.Errorf("epoch 3 without gnssFixOK = %+v, want no position", f)
	}
	// UBX off: the same frames are counted as unused, never garbage.
	_, counts = decodeAll(t, ubxStream(t), false)
	if counts.UBXFrames != 0 || counts.UBXOther != 4 {
		t.Errorf("UBX off: counts = %+v, want 4 unknown frames", counts)
	}
}

func readFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// decodeAll runs a whole stream through a decoder in small chunks (as a
// serial port delivers it) and flushes at the end.
func decodeAll(tb testing.TB, stream []byte, ubx bool) ([]drivers.Fix, Counts) {
	tb.Helper()
	var fixes []drivers.Fix
	asm := NewAssembler()
	asm.DateFloor, asm.DateCeiling = testFloor, testCeiling
	dec := newDecoder(ubx, asm, func(f drivers.Fix, _ time.Time) { fixes = append(fixes, f) })
	at := testNow()
	for len(stream) > 0 {
		n := min(len(stream), 7)
		dec.write(stream[:n], at)
		stream = stream[n:]
	}
	dec.flush(at)
	return fixes, dec.counts
}

type golden struct {
	Counts Counts
	Fixes  []drivers.Fix
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name   string
		stream func(testing.TB) []byte
	}{
		{name: "standard", stream: func(tb testing.TB) []byte { return readFile(tb, "standard.nmea") }},
		{name: "multignss", stream: func(tb testing.TB) []byte { return readFile(tb, "multignss.nmea") }},
		{name: "nofix", stream: func(tb testing.TB) []byte { return readFile(tb, "nofix.nmea") }},
		{name: "noisy", stream: func(tb testing.TB) []byte { return readFile(tb, "noisy.nmea") }},
		{name: "ubx", stream: ubxStream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fixes, counts := decodeAll(t, tt.stream(t), true)
			got, err := json.MarshalIndent(golden{Counts: counts, Fixes: fixes}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file; got:\n%s", path, got)
			}
		})
	}
}

// fixJSON shows a Fix with its optional values, for failure messages.
func fixJSON(f drivers.Fix) string {
	b, _ := json.Marshal(f)
	return string(b)
}
