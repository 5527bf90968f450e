package gnss

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	nmea "github.com/adrianmo/go-nmea"

	"github.com/edge-agent/edge-agent/drivers"
)

// knotMS is one knot in m/s: an international nautical mile (1852 m, exact)
// per hour.
const knotMS = 1852.0 / 3600.0

// epochTolerance is how far apart two timestamps may be and still belong to
// one epoch: NMEA prints centiseconds while NAV-PVT carries nanoseconds, and
// the fastest receivers run at 25 Hz (40 ms).
const epochTolerance = 5 * time.Millisecond

// Ranks say which sentence wins when several in one epoch report the same
// quantity. GGA is the position/altitude/HDOP authority (it is the sentence
// every receiver sends and the one with the most digits); RMC and VTG are
// the velocity authorities.
const (
	rankNone = iota
	rankUBX
	rankGSA
	rankVTG
	rankRMC
	rankGNS
	rankGGA
)

// part is what one sentence or frame contributes to an epoch.
type part struct {
	nmea.BaseSentence

	tod     int64 // ns since midnight UTC
	hasTOD  bool
	date    civilDate
	hasDate bool

	lat, lon float64
	posRank  int
	alt      float64
	altRank  int
	speed    float64 // m/s
	spdRank  int
	track    float64 // degrees true
	trkRank  int
	hdop     float64
	hdopRank int

	status  int             // +1 the receiver says fix, -1 it says no fix, 0 silent
	mode    drivers.FixMode // from GSA or NAV-PVT; 0 when the part does not say
	sats    int             // satellites used, from GGA/GNS/NAV-PVT; -1 unknown
	gsaSats int             // satellites listed in a GSA
}

type civilDate struct {
	y int
	m time.Month
	d int
}

// epoch accumulates the parts that share one time of day.
type epoch struct {
	part          // merged view
	parts    int  // how many parts were merged
	statused bool // an RMC, GGA, GNS or NAV-PVT spoke about fix validity
	valid    bool // some part said "fix"
	invalid  bool // some part said "no fix": it wins over any "fix"
	gsaMode  drivers.FixMode
	ubxMode  drivers.FixMode
}

// Assembler merges NMEA sentences and UBX NAV-PVT frames into one Fix per
// navigation epoch. An epoch is complete when a sentence with a different
// time of day arrives (or on Flush), so Feed hands back the previous epoch.
//
// Validity is conservative: if any sentence of the epoch says there is no fix
// (RMC status V or mode N/E/M/S, GGA quality 0/6/7/8, GNS mode all N, GSA fix
// type 1, VTG mode N, NAV-PVT without gnssFixOK) the Fix has Mode FixNone and
// no position, whatever coordinates were printed. Dead reckoning, manual and
// simulator positions are not treated as fixes: a record signed as
// "gnss.fix" must come from satellites.
//
// The zero value is not usable; call NewAssembler. Not safe for concurrent
// use.
type Assembler struct {
	// Now, when set, dates epochs whose sentences carry a time of day but no
	// date (GGA/GNS-only receivers) before any RMC, ZDA or NAV-PVT has
	// supplied one: the date that puts the fix closest to Now is used.
	// When nil, such epochs have no time and therefore no position.
	Now func() time.Time

	p       nmea.SentenceParser
	cur     epoch
	started bool // the last Feed started a new timed epoch
	date    civilDate
	hasDate bool
	lastTOD int64
}

// NewAssembler returns an Assembler with no epoch pending.
func NewAssembler() *Assembler {
	a := &Assembler{}
	a.cur.reset()
	a.p = nmea.SentenceParser{
		CheckCRC: checkCRC,
		// Drop everything we do not use before go-nmea runs its own typed
		// parser on it: cheaper, and a malformed GLL is none of our business.
		OnBaseSentence: func(s *nmea.BaseSentence) error {
			if s.Talker == "P" {
				return fmt.Errorf("%w: proprietary $P%s", ErrUnknown, s.Type)
			}
			switch s.Type {
			case nmea.TypeRMC, nmea.TypeGGA, nmea.TypeGNS, nmea.TypeGSA,
				nmea.TypeVTG, nmea.TypeGSV, nmea.TypeZDA:
				return nil
			}
			return fmt.Errorf("%w: %s%s", ErrUnknown, s.Talker, s.Type)
		},
		CustomParsers: map[string]nmea.ParserFunc{
			nmea.TypeRMC: parseRMC,
			nmea.TypeGGA: parseGGA,
			nmea.TypeGNS: parseGNS,
			nmea.TypeGSA: parseGSA,
			nmea.TypeVTG: parseVTG,
			nmea.TypeGSV: parseGSV,
			nmea.TypeZDA: parseZDA,
		},
	}
	return a
}

// checkCRC replaces go-nmea's check so that a bad checksum is told apart
// from a missing one (a truncated line) and no string is formatted per line.
func checkCRC(s nmea.BaseSentence, rawFields string) error {
	if len(s.Checksum) != 2 {
		return fmt.Errorf("%w: checksum field %q", ErrGarbled, s.Checksum)
	}
	want, err := strconv.ParseUint(s.Checksum, 16, 8)
	if err != nil {
		return fmt.Errorf("%w: checksum field %q", ErrGarbled, s.Checksum)
	}
	var sum byte
	for i := 0; i < len(rawFields); i++ {
		sum ^= rawFields[i]
	}
	if sum != byte(want) {
		return fmt.Errorf("%w: computed %02X, sentence says %s", ErrBadChecksum, sum, s.Checksum)
	}
	return nil
}

// Feed parses one line (with or without its CR/LF) and adds it to the
// pending epoch. When the line starts a new epoch, the previous one is
// returned with complete set. err wraps ErrBadChecksum, ErrGarbled or
// ErrUnknown when the line was not used; the pending epoch is unchanged then.
func (a *Assembler) Feed(line []byte) (fix drivers.Fix, complete bool, err error) {
	a.started = false
	for _, c := range line {
		// go-nmea takes a string; binary noise must not reach it as a
		// "field", and a NUL or 0xB5 inside a line means it was cut.
		if (c < 0x20 || c > 0x7e) && c != '\r' && c != '\n' {
			return drivers.Fix{}, false, fmt.Errorf("%w: non-ASCII byte 0x%02x", ErrGarbled, c)
		}
	}
	s, err := a.p.Parse(string(line))
	if err != nil {
		if errors.Is(err, ErrBadChecksum) || errors.Is(err, ErrGarbled) || errors.Is(err, ErrUnknown) {
			return drivers.Fix{}, false, fmt.Errorf("gnss: parse %.12q: %w", line, err)
		}
		return drivers.Fix{}, false, fmt.Errorf("gnss: parse %.12q: %w: %w", line, ErrGarbled, err)
	}
	p, ok := s.(*part)
	if !ok { // unreachable: every type that passes OnBaseSentence has a custom parser
		return drivers.Fix{}, false, fmt.Errorf("gnss: parse %.12q: %w", line, ErrUnknown)
	}
	fix, complete = a.add(p)
	return fix, complete, nil
}

// FeedNAVPVT adds the payload of a UBX NAV-PVT frame (class 0x01, id 0x07,
// 92 bytes, checksum already verified) to the pending epoch.
func (a *Assembler) FeedNAVPVT(payload []byte) (fix drivers.Fix, complete bool, err error) {
	a.started = false
	p, err := parseNAVPVT(payload)
	if err != nil {
		return drivers.Fix{}, false, err
	}
	fix, complete = a.add(p)
	return fix, complete, nil
}

// Flush completes the pending epoch, for a receiver that has gone quiet after
// its burst (the serial loop calls it on a read timeout) or at end of input.
// It reports false when nothing worth a Fix is pending: no time and no
// sentence that spoke about fix validity.
func (a *Assembler) Flush() (drivers.Fix, bool) {
	if !a.cur.hasTOD && !a.cur.statused {
		return drivers.Fix{}, false
	}
	f := a.finish()
	a.cur.reset()
	return f, true
}

func (e *epoch) reset() {
	*e = epoch{}
	e.sats = -1
}

func (a *Assembler) add(p *part) (drivers.Fix, bool) {
	var out drivers.Fix
	complete := false
	switch {
	case p.hasTOD:
		if a.cur.hasTOD && absDur(a.cur.tod-p.tod) >= int64(epochTolerance) {
			out, complete = a.finish(), true
			a.cur.reset()
		}
		if !a.cur.hasTOD {
			a.started = true
		}
	case p.statusBearing() && a.cur.hasTOD:
		// An RMC/GGA/GNS with an empty time field is a later epoch of a
		// receiver that lost its time, not part of this one.
		out, complete = a.finish(), true
		a.cur.reset()
	}
	a.cur.merge(p)
	return out, complete
}

// statusBearing reports whether the part is one of the per-epoch sentences
// that state fix validity and carry the epoch's time.
func (p *part) statusBearing() bool {
	switch p.Type {
	case nmea.TypeRMC, nmea.TypeGGA, nmea.TypeGNS, ubxType:
		return true
	}
	return false
}

func absDur(d int64) int64 {
	if d < 0 {
		return -d
	}
	return d
}

func (e *epoch) merge(p *part) {
	e.parts++
	if p.hasTOD && !e.hasTOD {
		e.tod, e.hasTOD = p.tod, true
	}
	if p.hasDate && !e.hasDate {
		e.date, e.hasDate = p.date, true
	}
	if p.posRank > e.posRank {
		e.lat, e.lon, e.posRank = p.lat, p.lon, p.posRank
	}
	if p.altRank > e.altRank {
		e.alt, e.altRank = p.alt, p.altRank
	}
	if p.spdRank > e.spdRank {
		e.speed, e.spdRank = p.speed, p.spdRank
	}
	if p.trkRank > e.trkRank {
		e.track, e.trkRank = p.track, p.trkRank
	}
	if p.hdopRank > e.hdopRank {
		e.hdop, e.hdopRank = p.hdop, p.hdopRank
	}
	switch {
	case p.status > 0:
		e.valid = true
	case p.status < 0:
		e.invalid = true
	}
	if p.statusBearing() {
		e.statused = true
	}
	if p.Type == nmea.TypeGSA && p.mode != 0 && e.gsaMode == 0 {
		e.gsaMode = p.mode
	}
	if p.Type == ubxType && p.mode != 0 {
		e.ubxMode = p.mode
	}
	if p.sats > e.sats {
		e.sats = p.sats
	}
	e.gsaSats += p.gsaSats
}

// finish turns the pending epoch into a Fix and advances the date tracking.
func (a *Assembler) finish() drivers.Fix {
	e := &a.cur
	var f drivers.Fix
	f.Mode = drivers.FixNone
	sats := max(e.sats, e.gsaSats, 0)
	f.Sats = uint8(min(sats, math.MaxUint8))

	var t time.Time
	timed := false
	if e.hasTOD {
		t, timed = a.resolveTime(e)
		if timed {
			f.TimeUnixNano = t.UnixNano()
		}
	}
	if !timed || !e.valid || e.invalid || e.posRank == rankNone {
		return f
	}
	switch {
	case e.gsaMode >= drivers.Fix2D:
		f.Mode = e.gsaMode
	case e.ubxMode >= drivers.Fix2D:
		f.Mode = e.ubxMode
	case e.altRank != rankNone:
		// No GSA: a receiver that prints an altitude is solving in 3D.
		f.Mode = drivers.Fix3D
	default:
		f.Mode = drivers.Fix2D
	}
	f.Lat, f.Lon = e.lat, e.lon
	f.AltMSL = e.alt
	f.SpeedMS = e.speed
	f.TrackDeg = e.track
	f.HDOP = e.hdop
	return f
}

// resolveTime dates the epoch: its own date (RMC, ZDA, NAV-PVT), else the
// last known date (rolled over at midnight), else the Now hint.
func (a *Assembler) resolveTime(e *epoch) (time.Time, bool) {
	var d civilDate
	switch {
	case e.hasDate:
		d = e.date
	case a.hasDate:
		d = a.date
		if e.tod < a.lastTOD-12*int64(time.Hour) {
			n := time.Date(d.y, d.m, d.d+1, 0, 0, 0, 0, time.UTC)
			d = civilDate{y: n.Year(), m: n.Month(), d: n.Day()}
		}
	case a.Now != nil:
		now := a.Now().UTC()
		best := time.Time{}
		for _, off := range []int{-1, 0, 1} {
			c := time.Date(now.Year(), now.Month(), now.Day()+off, 0, 0, 0, 0, time.UTC).Add(time.Duration(e.tod))
			if best.IsZero() || absDur(int64(c.Sub(now))) < absDur(int64(best.Sub(now))) {
				best = c
			}
		}
		d = civilDate{y: best.Year(), m: best.Month(), d: best.Day()}
	default:
		return time.Time{}, false
	}
	a.date, a.hasDate, a.lastTOD = d, true, e.tod
	return time.Date(d.y, d.m, d.d, 0, 0, 0, 0, time.UTC).Add(time.Duration(e.tod)), true
}
