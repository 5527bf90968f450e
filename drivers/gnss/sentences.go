package gnss

import (
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
type fields struct{ *nmea.Parser }

func newFields(s nmea.BaseSentence, min int) fields {
	f := fields{nmea.NewParser(s)}
	if len(s.Fields) < min {
		f.SetErr("field count", "truncated")
	}
	return f
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
		p.sats = int(min(max(v.Value, 0), 255))
	}
	if v, ok := f.float(i+1, "hdop"); ok {
		p.hdop, p.hdopRank = v, rank
	}
	if v, ok := f.float(i+2, "altitude"); ok {
		p.alt, p.altRank = v, rank
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
	if v, ok := f.float(6, "speed"); ok {
		p.speed, p.spdRank = v*knotMS, rankRMC
	}
	if v, ok := f.float(7, "course"); ok {
		p.track, p.trkRank = v, rankRMC
	}
	if d := f.String(8, "date"); d != "" && f.Err() == nil {
		dt, err := nmea.ParseDate(d)
		if err != nil || dt.MM < 1 || dt.MM > 12 || dt.DD < 1 || dt.DD > 31 {
			f.SetErr("date", d)
		} else {
			// Two-digit year, pivoted on 1980 (GPS time began then). A
			// receiver with the week-rollover bug shows up as a clock offset.
			y := 2000 + dt.YY
			if dt.YY >= 80 {
				y = 1900 + dt.YY
			}
			p.date, p.hasDate = civilDate{y: y, m: time.Month(dt.MM), d: dt.DD}, true
		}
	}
	if m := f.optString(11); m != "" {
		if st := modeStatus(m[0]); st < 0 {
			p.status = -1
		}
	}
	return p, f.Err()
}

// GGA: time, lat, N/S, lon, E/W, quality, sats, HDOP, alt, M, sep, M, age, station.
func parseGGA(s nmea.BaseSentence) (nmea.Sentence, error) {
	f := newFields(s, 10)
	p := newPart(s)
	f.tod(0, p)
	f.position(1, rankGGA, p)
	switch q := f.String(5, "quality"); q {
	case "1", "2", "3", "4", "5": // GPS, DGPS, PPS, RTK fixed, RTK float
		p.status = 1
	case "0", "6", "7", "8": // invalid, dead reckoning, manual, simulator
		p.status = -1
	default:
		f.SetErr("quality", q)
	}
	f.solution(6, rankGGA, p)
	return p, f.Err()
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
	return p, f.Err()
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
	if v, ok := f.float(15, "hdop"); ok {
		p.hdop, p.hdopRank = v, rankGSA
	}
	return p, f.Err()
}

// VTG: true track, T, magnetic track, M, speed kn, N, speed km/h, K [, mode].
func parseVTG(s nmea.BaseSentence) (nmea.Sentence, error) {
	f := newFields(s, 8)
	p := newPart(s)
	if v, ok := f.float(0, "track"); ok {
		p.track, p.trkRank = v, rankVTG
	}
	if v, ok := f.float(6, "speed km/h"); ok {
		p.speed, p.spdRank = v/3.6, rankVTG
	} else if v, ok := f.float(4, "speed kn"); ok {
		p.speed, p.spdRank = v*knotMS, rankVTG
	}
	if m := f.optString(8); m != "" && modeStatus(m[0]) < 0 {
		p.status = -1
	}
	return p, f.Err()
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
	return newPart(s), f.Err()
}

// ZDA: time, day, month, year (four digits), zone hours, zone minutes.
func parseZDA(s nmea.BaseSentence) (nmea.Sentence, error) {
	f := newFields(s, 4)
	p := newPart(s)
	f.tod(0, p)
	d, m, y := f.NullInt64(1, "day"), f.NullInt64(2, "month"), f.NullInt64(3, "year")
	if f.Err() == nil && d.Valid && m.Valid && y.Valid {
		if d.Value < 1 || d.Value > 31 || m.Value < 1 || m.Value > 12 || y.Value < 1980 || y.Value > 9999 {
			f.SetErr("date", strings.Join(s.Fields[1:4], "/"))
		} else {
			p.date, p.hasDate = civilDate{y: int(y.Value), m: time.Month(m.Value), d: int(d.Value)}, true
		}
	}
	if !p.hasTOD {
		p.hasDate = false // a date without a time of day dates nothing
	}
	return p, f.Err()
}
