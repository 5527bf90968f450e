package gnss

import (
	"fmt"
	"math/big"
)

// parseDM converts an NMEA coordinate field ("4807.038", "01131.000") and its
// hemisphere letter to signed degrees.
//
// The value is computed as one division of two exact integers,
// (deg·60·10^k + minutes·10^k) / (60·10^k), so the result is the float64
// nearest to the decimal the receiver printed. Going through
// strconv.ParseFloat and then subtracting the degrees (what go-nmea's
// ParseGPS does) rounds twice and loses the last bits.
func parseDM(field, hemi string, maxDeg int64) (float64, error) {
	var sign float64
	switch {
	case maxDeg == 90 && hemi == "N", maxDeg == 180 && hemi == "E":
		sign = 1
	case maxDeg == 90 && hemi == "S", maxDeg == 180 && hemi == "W":
		sign = -1
	default:
		return 0, fmt.Errorf("hemisphere %q", hemi)
	}
	dot := len(field)
	for i := 0; i < len(field); i++ {
		if field[i] == '.' {
			dot = i
			break
		}
	}
	// Minutes always have two integer digits; the degrees are whatever
	// precedes them (receivers disagree on zero padding of the degrees).
	if dot < 3 || dot > 5 {
		return 0, fmt.Errorf("coordinate %q", field)
	}
	var deg, mins int64 // mins is minutes scaled by 10^k
	for i := 0; i < dot; i++ {
		c := field[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("coordinate %q", field)
		}
		if i < dot-2 {
			deg = deg*10 + int64(c-'0')
		} else {
			mins = mins*10 + int64(c-'0')
		}
	}
	frac := ""
	if dot < len(field) {
		frac = field[dot+1:]
	}
	if len(frac) > 15 {
		return 0, fmt.Errorf("coordinate %q: too many digits", field)
	}
	scale := int64(1)
	for i := 0; i < len(frac); i++ {
		c := frac[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("coordinate %q", field)
		}
		mins = mins*10 + int64(c-'0')
		scale *= 10
	}
	if mins >= 60*scale || deg > maxDeg || (deg == maxDeg && mins != 0) {
		return 0, fmt.Errorf("coordinate %q out of range", field)
	}
	den := 60 * scale
	num := deg*den + mins
	const exact = 1 << 53 // integers up to 2^53 convert to float64 exactly
	if num < exact && den < exact {
		return sign * (float64(num) / float64(den)), nil
	}
	// More than 11 decimals of minutes: rare, but keep the promise.
	f, _ := new(big.Rat).SetFrac(big.NewInt(num), big.NewInt(den)).Float64()
	return sign * f, nil
}

// parseTOD parses an NMEA "hhmmss.sss" time of day into nanoseconds since
// midnight UTC, keeping every printed digit up to nanoseconds (go-nmea keeps
// milliseconds and can round .9996 s up to a 1000 ms field).
func parseTOD(s string) (int64, error) {
	if len(s) < 6 {
		return 0, fmt.Errorf("time %q", s)
	}
	var v [6]int64
	for i := 0; i < 6; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("time %q", s)
		}
		v[i] = int64(c - '0')
	}
	h, m, sec := v[0]*10+v[1], v[2]*10+v[3], v[4]*10+v[5]
	// 60 is a leap second, which UTC (and so NMEA) can print.
	if h > 23 || m > 59 || sec > 60 {
		return 0, fmt.Errorf("time %q out of range", s)
	}
	var ns int64
	if len(s) > 6 {
		if s[6] != '.' {
			return 0, fmt.Errorf("time %q", s)
		}
		scale := int64(100_000_000)
		for i := 7; i < len(s); i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("time %q", s)
			}
			ns += int64(c-'0') * scale // digits past 1 ns add zero
			scale /= 10
		}
	}
	return ((h*60+m)*60+sec)*1e9 + ns, nil
}
