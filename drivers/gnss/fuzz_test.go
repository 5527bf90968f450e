package gnss

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
)

// saysNoFix is the oracle, written from the standard rather than from the
// parser: does this accepted line or NAV-PVT payload declare "no fix"?
func saysNoFix(raw []byte) bool {
	if len(raw) == navPVTLen && raw[0] != '$' {
		fixType, flags := raw[20], raw[21]
		return flags&1 == 0 || fixType < 2 || fixType > 4 || raw[78]&1 != 0
	}
	s := strings.TrimRight(string(raw), "\r\n")
	if i := strings.IndexByte(s, '*'); i >= 0 {
		s = s[:i]
	}
	f := strings.Split(s, ",")
	if len(f[0]) < 4 {
		return false
	}
	field := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	switch f[0][len(f[0])-3:] {
	case "RMC":
		m := field(12)
		return field(2) == "V" || m != "" && strings.ContainsAny(m[:1], "NEMS")
	case "GGA":
		return strings.ContainsAny(field(6), "0678")
	case "GSA":
		return field(2) == "1"
	case "GNS":
		return !strings.ContainsAny(field(6), "ADPRF")
	case "VTG":
		m := field(9)
		return m != "" && strings.ContainsAny(m[:1], "NEMS")
	}
	return false
}

func FuzzReader(f *testing.F) {
	for _, name := range []string{"standard.nmea", "multignss.nmea", "nofix.nmea", "noisy.nmea"} {
		f.Add(readFile(f, name), true)
	}
	f.Add(ubxStream(f), true)
	f.Add([]byte("$GPRMC,123519,V,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*7D\r\n"), false)
	f.Add([]byte{0xB5, 0x62, 0x01, 0x07, 0xff, 0xff, '$', 'G'}, true)
	f.Fuzz(func(t *testing.T, data []byte, ubx bool) {
		var epochRaw [][]byte
		asm := NewAssembler()
		asm.DateFloor, asm.DateCeiling = testFloor, testCeiling
		dec := newDecoder(ubx, asm, func(drivers.Fix, time.Time) {})
		dec.trace = func(raw []byte, fix *drivers.Fix) {
			if raw != nil {
				epochRaw = append(epochRaw, bytes.Clone(raw))
				return
			}
			if fix.HasPosition() {
				for _, r := range epochRaw {
					if saysNoFix(r) {
						t.Fatalf("fix with position %+v from an epoch containing %q", *fix, r)
					}
				}
				if fix.TimeUnixNano == 0 || math.IsNaN(fix.Lat) || math.IsNaN(fix.Lon) ||
					math.Abs(fix.Lat) > 90 || math.Abs(fix.Lon) > 180 {
					t.Fatalf("implausible fix %+v", *fix)
				}
				if err := checkFix(*fix); err != nil {
					t.Fatalf("the assembler let an impossible value through: %v", err)
				}
			} else if fix.Lat != 0 || fix.Lon != 0 {
				t.Fatalf("no-fix epoch carries coordinates: %+v", *fix)
			}
			epochRaw = epochRaw[:0]
		}
		// Split the input at an arbitrary point: framing must not depend on
		// how reads cut the stream.
		cut := len(data) / 3
		dec.write(data[:cut], testNow())
		dec.write(data[cut:], testNow())
		dec.flush(testNow())
	})
}
