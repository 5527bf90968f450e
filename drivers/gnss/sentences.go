package gnss

import (
	"fmt"
	"math"
	"strings"
	"time"

	nmea "github.com/adrianmo/go-nmea"

	"github.com/edge-agent/edge-agent/drivers"
)

// The parsers below follow NMEA 0183 v4.11 field layouts; receivers that
// speak older versions send fewer trailing fields, which is why only the
// leading fields are required. go-nmea does the framing, checksum and talker
// split and provides the field accessors; coordinates and times are
// converted here (see parseDM and parseTOD for why).

// fields wraps go-nmea's Parser with the conversions it lacks.
type fields struct {
	*nmea.Parser
	inval *string // the first value out of its physical range
}

func newFields(s nmea.BaseSentence, min int) fields {
	f := fields{nmea.NewParser(s), new(string)}
	if len(s.Fields) < min {
		f.SetErr("field count", "truncated")
	}
	return f
}

// result ends a parser: an impossible value is ErrInvalidValue, any other
// fault the field error go-nmea recorded.
func (f fields) result(p *part) (nmea.Sentence, error) {
	if *f.inval != "" {
		return p, fmt.Errorf("%w: %s", ErrInvalidValue, *f.inval)
	}
	return p, f.Err()
}

// Physical ranges of what a receiver reports. A checksum-valid "NaN", "inf"
// or "-1" is refused at the boundary: it would be signed, and it would make
// every record that carries the location stamp fail to encode.
type valueRange struct{ lo, hi float64 }

var (
	rangeDOP   = valueRange{0, 100}     // NMEA prints 99.99 for "unknown"
	rangeAlt   = valueRange{-1500, 1e5} // m: the Dead Sea shore to a balloon's ceiling
	rangeSpeed = valueRange{0, 2000}    // m/s
	rangeTrack = valueRange{0, 360}     // degrees
	rangeSigma = valueRange{0, 1e6}     // m
	rangeKnots = valueRange{0, 2000 / knotMS}
	rangeKMH   = valueRange{0, 2000 * 3.6}
)

// quantity reads an optional number and checks it against r.
func (f fields) quantity(i int, name string, r valueRange) (float64, bool) {
	v, ok := f.float(i, name)
	if !ok {
		return 0, false
	}
	if math.IsNaN(v) || v < r.lo || v > r.hi { // NaN and ±Inf fail here
		if *f.inval == "" {
			*f.inval = fmt.Sprintf("%s %s", name, f.Fields[i])
		}
		f.SetErr(name, f.Fields[i])
		return 0, false
	}
	return v, true
}

// dop reads a dilution of precision; 0 is how some receivers say "unknown".
func (f fields) dop(i int, name string, o *opt, rank int) {
	if v, ok := f.quantity(i, name, rangeDOP); ok && v > 0 {
		o.set(v, rank)
	}
}

// tod reads a time of day; an empty field (no time yet) is not an error.
func (f fields) tod(i int, p *part) {
	s := f.String(i, "time")
	if s == "" || f.Err() != nil {
		return
	}
	v, err := parseTOD(s)
	if err != nil {
		f.SetErr("time", s)
		return
	}
	p.tod, p.hasTOD = v, true
}

// position reads lat, N/S, lon, E/W at i..i+3; empty fields mean none.
func (f fields) position(i, rank int, p *part) {
	lat, ns := f.String(i, "latitude"), f.String(i+1, "north/south")
	lon, ew := f.String(i+2, "longitude"), f.String(i+3, "east/west")
	if f.Err() != nil || lat == "" || lon == "" {
		return
	}
	la, err := parseDM(lat, ns, 90)
	if err != nil {
		f.SetErr("latitude", err.Error())
		return
	}
	lo, err := parseDM(lon, ew, 180)
	if err != nil {
		f.SetErr("longitude", err.Error())
		return
	}
	p.lat, p.lon, p.posRank = la, lo, rank
}

// solution reads the satellites, HDOP and altitude fields that GGA and GNS
// both carry at i, i+1 and i+2.
func (f fields) solution(i, rank int, p *part) {
	if v := f.NullInt64(i, "satellites"); v.Valid {
		if v.Value < 0 || v.Value > 255 {
			*f.inval = fmt.Sprintf("satellites %d", v.Value)
			f.SetErr("satellites", f.Fields[i])
			return
		}
		p.sats = int(v.Value)
	}
	f.dop(i+1, "hdop", &p.hdop, rank)
	if v, ok := f.quantity(i+2, "altitude", rangeAlt); ok {
		p.alt.set(v, rank)
	}
}

func (f fields) float(i int, ctx string) (float64, bool) {
	v := f.NullFloat64(i, ctx)
	return v.Value, v.Valid
}

func (f fields) optString(i int) string {
	if i < len(f.Fields) {
		return f.Fields[i]
	}
	return ""
}

func newPart(s nmea.BaseSentence) *part {
	return &part{BaseSentence: s, sats: -1}
}

// modeStatus maps an NMEA 2.3+ mode indicator (RMC, VTG, GNS per system) to
// a fix verdict: A autonomous, D differential, P precise, R RTK, F float RTK
// are fixes; N none, E dead reckoning, M manual, S simulator are not.
func modeStatus(c byte) int {
	switch c {
	case 'A', 'D', 'P', 'R', 'F':
		return 1
	case 'N', 'E', 'M', 'S':
		return -1
	}
	return 0
}

// RMC: time, status, lat, N/S, lon, E/W, speed kn, course, date, magvar,
// E/W [, mode [, nav status]].
func parseRMC(s nmea.BaseSentence) (nmea.Sentence, error) {
	f := newFields(s, 9)
	p := newPart(s)
	f.tod(0, p)
	switch f.String(1, "status") {
	case "A":
		p.status = 1
	case "V":
		p.status = -1
	default:
		f.SetErr("status", f.String(1, "status"))
	}
	f.position(2, rankRMC, p)
	if v, ok := f.quantity(6, "speed", rangeKnots); ok {
		p.speed.set(v*knotMS, rankRMC)
	}
	if v, ok := f.quantity(7, "course", rangeTrack); ok {
		p.track.set(v, rankRMC)
	}
	if d := f.String(8, "date"); d != "" && f.Err() == nil {
		if dt, ok := parseDDMMYY(d); ok {
			p.date, p.hasDate = dt, true
		} else {
			f.SetErr("date", d)
		}
	}
	if m := f.optString(11); m != "" {
		if st := modeStatus(m[0]); st < 0 {
			p.status = -1
		}
	}
	return f.result(p)
}

// parseDDMMYY reads an RMC date: exactly six digits, a real calendar day.
// The two-digit year is pivoted on 1980 (GPS time began then); what that
// gives for a receiver with the week-rollover bug, Assembler.plausible
// corrects or refuses.
func parseDDMMYY(s string) (civilDate, bool) {
	if len(s) != 6 {
		return civilDate{}, false
	}
	var v [3]int
	for i := 0; i < 6; i++ {
		if s[i] < '0' || s[i] > '9' {
			return civilDate{}, false
		}
		v[i/2] = v[i/2]*10 + int(s[i]-'0')
	}
	y := 2000 + v[2]
	if v[2] >= 80 {
		y = 1900 + v[2]
	}
	return checkDate(y, v[1], v[0])
}

// checkDate refuses days that do not exist (31 April, 30 February).
func checkDate(y, m, d int) (civilDate, bool) {
	if m < 1 || m > 12 || d < 1 || d > 31 {
		return civilDate{}, false
	}
	if t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC); t.Day() != d {
		return civilDate{}, false
	}
	return civilDate{y: y, m: time.Month(m), d: d}, true
}

// GGA: time, lat, N/S, lon, E/W, quality, sats, HDOP, alt, M, sep, M, age, station.
func parseGGA(s nmea.BaseSentence) (nmea.Sentence, error) {
	f := newFields(s, 10)
	p := newPart(s)
	f.tod(0, p)
	f.position(1, rankGGA, p)
	switch q := f.String(5, "quality"); q {
	case "1", "2", "3", "4", "5": // GPS, DGPS, PPS, RTK fixed, RTK float
		p.status, p.quality = 1, q[0]-'0'
	case "0", "6", "7", "8": // invalid, dead reckoning, manual, simulator
		p.status = -1
	default:
		f.SetErr("quality", q)
	}
	f.solution(6, rankGGA, p)
	if p.sats == 0 {
		// "Fix" from no satellites: a receiver holding its last solution.
		p.status = -1
	}
	return f.result(p)
}

// GNS: time, lat, N/S, lon, E/W, mode (one letter per system), sats, HDOP,
// alt, sep, age, station [, nav status].
func parseGNS(s nmea.BaseSentence) (nmea.Sentence, error) {
	f := newFields(s, 9)
	p := newPart(s)
	f.tod(0, p)
	f.position(1, rankGNS, p)
	mode := f.String(5, "mode")
	if mode == "" && f.Err() == nil {
		f.SetErr("mode", "empty")
	}
	p.status = -1
	for i := 0; i < len(mode); i++ {
		if modeStatus(mode[i]) > 0 {
			p.status = 1 // a fix from any one system is a fix
		}
	}
	f.solution(6, rankGNS, p)
	if p.sats == 0 {
		p.status = -1
	}
	return f.result(p)
}

// GSA: selection mode, fix type, 12 satellite ids, PDOP, HDOP, VDOP [, system id].
func parseGSA(s nmea.BaseSentence) (nmea.Sentence, error) {
	f := newFields(s, 17)
	p := newPart(s)
	switch t := f.String(1, "fix type"); t {
	case "1":
		p.mode, p.status = drivers.FixNone, -1
	case "2":
		p.mode = drivers.Fix2D
	case "3":
		p.mode = drivers.Fix3D
	default:
		f.SetErr("fix type", t)
	}
	for i := 2; i < 14 && f.Err() == nil; i++ {
		if f.String(i, "satellite") != "" {
			p.gsaSats++
		}
	}
	p.gsa = true
	f.dop(14, "pdop", &p.pdop, rankGSA)
	f.dop(15, "hdop", &p.hdop, rankGSA)
	f.dop(16, "vdop", &p.vdop, rankGSA)
	return f.result(p)
}

// VTG: true track, T, magnetic track, M, speed kn, N, speed km/h, K [, mode].
func parseVTG(s nmea.BaseSentence) (nmea.Sentence, error) {
	f := newFields(s, 8)
	p := newPart(s)
	if v, ok := f.quantity(0, "track", rangeTrack); ok {
		p.track.set(v, rankVTG)
	}
	if v, ok := f.quantity(6, "speed km/h", rangeKMH); ok {
		p.speed.set(v/3.6, rankVTG)
	} else if v, ok := f.quantity(4, "speed kn", rangeKnots); ok {
		p.speed.set(v*knotMS, rankVTG)
	}
	if m := f.optString(8); m != "" && modeStatus(m[0]) < 0 {
		p.status = -1
	}
	return f.result(p)
}

// GSV: message count, message number, satellites in view, then 0-4 blocks of
// id, elevation, azimuth, SNR [, signal id]. Checked for shape only: a Fix
// carries satellites used, not in view.
func parseGSV(s nmea.BaseSentence) (nmea.Sentence, error) {
	f := newFields(s, 3)
	total, num := f.NullInt64(0, "message count"), f.NullInt64(1, "message number")
	f.NullInt64(2, "satellites in view")
	if f.Err() == nil && (!total.Valid || !num.Valid || num.Value < 1 || num.Value > total.Value) {
		f.SetErr("message number", strings.Join(s.Fields[:2], "/"))
	}
	return f.result(newPart(s))
}

// ZDA: time, day, month, year (four digits), zone hours, zone minutes.
func parseZDA(s nmea.BaseSentence) (nmea.Sentence, error) {
	f := newFields(s, 4)
	p := newPart(s)
	f.tod(0, p)
	d, m, y := f.NullInt64(1, "day"), f.NullInt64(2, "month"), f.NullInt64(3, "year")
	if f.Err() == nil && d.Valid && m.Valid && y.Valid {
		dt, ok := checkDate(int(y.Value), int(m.Value), int(d.Value))
		if !ok || y.Value < 1980 || y.Value > 9999 || len(s.Fields[3]) != 4 {
			f.SetErr("date", strings.Join(s.Fields[1:4], "/"))
		} else {
			p.date, p.hasDate = dt, true
		}
	}
	if !p.hasTOD {
		p.hasDate = false // a date without a time of day dates nothing
	}
	return f.result(p)
}

// GLL: lat, N/S, lon, E/W, time, status [, mode]. Some receivers report
// their fixes only here; next to RMC/GGA it is ignored (Assembler.add).
func parseGLL(s nmea.BaseSentence) (nmea.Sentence, error) {
	f := newFields(s, 6)
	p := newPart(s)
	f.position(0, rankGLL, p)
	f.tod(4, p)
	switch st := f.String(5, "status"); st {
	case "A":
		p.status = 1
	case "V":
		p.status = -1
	default:
		f.SetErr("status", st)
	}
	if m := f.optString(6); m != "" && modeStatus(m[0]) < 0 {
		p.status = -1
	}
	return f.result(p)
}

// GST: time, RMS of the range residuals, error ellipse semi-major and
// semi-minor sigma, its orientation, then latitude, longitude and altitude
// sigma in metres. hacc is the root sum square of the two horizontal sigmas.
func parseGST(s nmea.BaseSentence) (nmea.Sentence, error) {
	f := newFields(s, 8)
	p := newPart(s)
	f.tod(0, p)
	la, okLa := f.quantity(5, "latitude sigma", rangeSigma)
	lo, okLo := f.quantity(6, "longitude sigma", rangeSigma)
	if okLa && okLo {
		p.hacc.set(math.Hypot(la, lo), rankGGA)
	}
	if v, ok := f.quantity(7, "altitude sigma", rangeSigma); ok {
		p.vacc.set(v, rankGGA)
	}
	return f.result(p)
}
