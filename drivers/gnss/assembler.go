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
// the velocity authorities; GLL only counts for receivers that send nothing
// better.
const (
	rankNone = iota
	rankUBX
	rankGSA
	rankVTG
	rankGLL
	rankRMC
	rankGNS
	rankGGA
)

// opt is an optional quantity with the rank of the sentence that gave it;
// rank 0 means no sentence of the epoch reported it.
type opt struct {
	v    float64
	rank int
}

func (o *opt) set(v float64, rank int) { o.v, o.rank = v, rank }

func (o *opt) merge(p opt) {
	if p.rank > o.rank {
		*o = p
	}
}

// part is what one sentence or frame contributes to an epoch.
type part struct {
	nmea.BaseSentence

	tod     int64 // ns since midnight UTC
	hasTOD  bool
	date    civilDate
	hasDate bool
	ubxWeek bool // the date comes from a UBX full GPS week number

	lat, lon float64
	posRank  int
	alt      opt
	speed    opt // m/s
	track    opt // degrees true
	hdop     opt
	pdop     opt
	vdop     opt
	hacc     opt // m, 1 sigma
	vacc     opt

	status  int             // +1 the receiver says fix, -1 it says no fix, 0 silent
	mode    drivers.FixMode // from GSA or UBX; 0 when the part does not say
	quality uint8           // GGA numbering; 0 when the part does not say
	sats    int             // satellites used, from GGA/GNS/UBX; -1 unknown
	gsaSats int             // satellites listed in a GSA
	gsa     bool            // a GSA was seen (gsaSats counts are meaningful)
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
	statused bool // an RMC, GGA, GNS, GLL or UBX solution spoke about fix validity
	valid    bool // some part said "fix"
	invalid  bool // some part said "no fix": it wins over any "fix"
	gsaMode  drivers.FixMode
	ubxMode  drivers.FixMode
}

// Assembler merges NMEA sentences and UBX navigation frames into one Fix per
// navigation epoch. An epoch is complete when a sentence with a different
// time of day arrives (or on Flush), so Feed hands back the previous epoch.
//
// Validity is conservative: if any sentence of the epoch says there is no fix
// (RMC/GLL status V or mode N/E/M/S, GGA quality 0/6/7/8 or 0 satellites,
// GNS mode all N, GSA fix type 1, VTG mode N, UBX without gnssFixOK) the Fix
// has Mode FixNone and no position, whatever coordinates were printed. Dead
// reckoning, manual and simulator positions are not treated as fixes: a
// record signed as "gnss.fix" must come from satellites.
//
// Time is the receiver's or nothing: an epoch is dated by its own RMC, ZDA
// or UBX date, or by the date of an epoch less than an hour before it. A
// date before DateFloor is taken for the GPS week-number rollover bug and
// moved forward by 1024 weeks (the Fix says so in RolloverWeeks) when that
// lands before the ceiling; other dates are refused, and an undated epoch
// has no time and therefore no position.
//
// The zero value is not usable; call NewAssembler. Not safe for concurrent
// use.
type Assembler struct {
	// DateFloor is the earliest date a receiver can truly report (zero means
	// defaultDateFloor); DateCeiling the latest (zero: 15 years after the
	// floor). A device still running this build after that needs an update.
	DateFloor, DateCeiling time.Time
	// NoChecksum accepts NMEA sentences without a "*hh" checksum, for
	// receivers that never send one. A wrong checksum is always refused.
	NoChecksum bool

	p        nmea.SentenceParser
	cur      epoch
	started  bool // the last Feed started a new timed epoch
	date     civilDate
	hasDate  bool
	rollover uint16 // weeks added to the carried date
	lastTOD  int64
	primary  bool  // RMC, GGA, GNS or a UBX solution seen: GLL is redundant
	done     int64 // time of day of the last completed timed epoch
	haveDone bool
	badDates uint64 // epochs whose date was refused
}

// defaultDateFloor is before any date this build can run at (never modified): a receiver
// printing an earlier date has the week-rollover bug or no time yet.
var defaultDateFloor = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// typeGST is the GNSS pseudorange error statistics sentence (go-nmea has no
// constant for it).
const typeGST = "GST"

// rolloverPeriod is the GPS week-number wrap of 10-bit receivers.
const rolloverPeriod = 1024 * 7 * 24 * time.Hour

// NewAssembler returns an Assembler with no epoch pending.
func NewAssembler() *Assembler {
	a := &Assembler{}
	a.cur.reset()
	a.p = nmea.SentenceParser{
		CheckCRC:       a.checkCRC,
		OnBaseSentence: usedSentence,
		CustomParsers:  sentenceParsers,
	}
	return a
}

// usedSentence drops everything we do not use before go-nmea runs its own
// typed parser on it: cheaper, and a malformed $GPTXT is none of our business.
func usedSentence(s *nmea.BaseSentence) error {
	if s.Talker == "P" {
		return fmt.Errorf("%w: proprietary $P%s", ErrUnknown, s.Type)
	}
	if _, ok := sentenceParsers[s.Type]; ok {
		return nil
	}
	return fmt.Errorf("%w: %s%s", ErrUnknown, s.Talker, s.Type)
}

// sentenceParsers are the sentences the assembler uses. Never modified.
var sentenceParsers = map[string]nmea.ParserFunc{
	nmea.TypeRMC: parseRMC,
	nmea.TypeGGA: parseGGA,
	nmea.TypeGNS: parseGNS,
	nmea.TypeGSA: parseGSA,
	nmea.TypeVTG: parseVTG,
	nmea.TypeGSV: parseGSV,
	nmea.TypeZDA: parseZDA,
	nmea.TypeGLL: parseGLL,
	typeGST:      parseGST,
}

// checkCRC replaces go-nmea's check so that a bad checksum is told apart
// from a missing one and no string is formatted per line.
func (a *Assembler) checkCRC(s nmea.BaseSentence, rawFields string) error {
	if s.Checksum == "" {
		if a.NoChecksum {
			return nil
		}
		return ErrNoChecksum
	}
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
// returned with complete set. err wraps ErrBadChecksum, ErrNoChecksum,
// ErrGarbled, ErrUnknown or ErrLate when the line was not used; the pending
// epoch is unchanged then.
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
		for _, known := range []error{ErrBadChecksum, ErrNoChecksum, ErrGarbled, ErrUnknown} {
			if errors.Is(err, known) {
				return drivers.Fix{}, false, fmt.Errorf("gnss: parse %.12q: %w", line, err)
			}
		}
		return drivers.Fix{}, false, fmt.Errorf("gnss: parse %.12q: %w: %w", line, ErrGarbled, err)
	}
	p, ok := s.(*part)
	if !ok { // unreachable: every type that passes OnBaseSentence has a custom parser
		return drivers.Fix{}, false, fmt.Errorf("gnss: parse %.12q: %w", line, ErrUnknown)
	}
	return a.add(p)
}

// FeedNAVPVT adds the payload of a UBX NAV-PVT frame (class 0x01, id 0x07,
// 92 bytes, checksum already verified) to the pending epoch.
func (a *Assembler) FeedNAVPVT(payload []byte) (fix drivers.Fix, complete bool, err error) {
	return a.FeedUBX(ubxClassNAV, ubxIDPVT, payload)
}

// FeedUBX adds the payload of a UBX NAV-PVT, NAV-SOL or NAV-POSLLH frame
// (checksum already verified) to the pending epoch; other messages wrap
// ErrUnknown.
func (a *Assembler) FeedUBX(class, id byte, payload []byte) (fix drivers.Fix, complete bool, err error) {
	a.started = false
	n := ubxFrameLen(class, id)
	if n == 0 || len(payload) != n {
		return drivers.Fix{}, false, fmt.Errorf("gnss: UBX 0x%02x 0x%02x of %d bytes: %w", class, id, len(payload), ErrUnknown)
	}
	var p *part
	switch id {
	case ubxIDPVT:
		p = parseNAVPVT(payload)
	case ubxIDSOL:
		p = parseNAVSOL(payload)
	default:
		p = parseNAVPOSLLH(payload)
	}
	return a.add(p)
}

// Flush completes the pending epoch, for a receiver that has gone quiet after
// its burst (the serial loop calls it on a read timeout) or at end of input.
// It reports false when nothing worth a Fix is pending: no sentence that
// spoke about fix validity.
func (a *Assembler) Flush() (drivers.Fix, bool) {
	f, ok := a.finish()
	a.cur.reset()
	return f, ok
}

// BadDates counts epochs whose date was refused as implausible.
func (a *Assembler) BadDates() uint64 { return a.badDates }

func (e *epoch) reset() {
	*e = epoch{}
	e.sats = -1
}

func (a *Assembler) add(p *part) (drivers.Fix, bool, error) {
	if p.Type == nmea.TypeGLL && a.primary {
		// Receivers that send GLL next to RMC/GGA sometimes stamp it a
		// second apart; it adds nothing they do not say better.
		return drivers.Fix{}, false, nil
	}
	if p.statusBearing() && p.Type != nmea.TypeGLL {
		a.primary = true
	}
	var out drivers.Fix
	complete := false
	switch {
	case p.hasTOD:
		if a.cur.hasTOD && absDur(a.cur.tod-p.tod) >= int64(epochTolerance) ||
			!a.cur.hasTOD && a.cur.statused {
			// A new second, or an untimed tail ("$GPRMC,,V…") before it:
			// the tail is its own no-fix epoch, not a veto on this one.
			out, complete = a.finish()
			a.cur.reset()
		}
		if !a.cur.hasTOD && a.haveDone && absDur(a.done-p.tod) < int64(epochTolerance) {
			// A straggler of an epoch already handed on (the receiver paused
			// in mid-cycle): one epoch is one Fix, so it is dropped.
			return out, complete, fmt.Errorf("gnss: %s at %s: %w", p.Type, time.Duration(p.tod), ErrLate)
		}
		if !a.cur.hasTOD {
			a.started = true
		}
	case p.statusBearing() && a.cur.hasTOD:
		// An RMC/GGA/GNS with an empty time field is a later epoch of a
		// receiver that lost its time, not part of this one.
		out, complete = a.finish()
		a.cur.reset()
	}
	a.cur.merge(p)
	return out, complete, nil
}

// statusBearing reports whether the part is one of the per-epoch sentences
// that state fix validity and carry the epoch's time.
func (p *part) statusBearing() bool {
	switch p.Type {
	case nmea.TypeRMC, nmea.TypeGGA, nmea.TypeGNS, nmea.TypeGLL, ubxPVT, ubxSOL:
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
	if p.hasDate && (!e.hasDate || p.ubxWeek && !e.ubxWeek) {
		// A UBX full week number is better evidence than a printed date.
		e.date, e.hasDate, e.ubxWeek = p.date, true, p.ubxWeek
	}
	if p.posRank > e.posRank {
		e.lat, e.lon, e.posRank = p.lat, p.lon, p.posRank
	}
	e.alt.merge(p.alt)
	e.speed.merge(p.speed)
	e.track.merge(p.track)
	e.hdop.merge(p.hdop)
	e.pdop.merge(p.pdop)
	e.vdop.merge(p.vdop)
	e.hacc.merge(p.hacc)
	e.vacc.merge(p.vacc)
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
	if p.mode != 0 && (p.Type == ubxPVT || p.Type == ubxSOL) {
		e.ubxMode = p.mode
	}
	if p.quality > e.quality {
		e.quality = p.quality
	}
	if p.sats > e.sats {
		e.sats = p.sats
	}
	e.gsaSats += p.gsaSats
	e.gsa = e.gsa || p.gsa
}

// finish turns the pending epoch into a Fix and advances the date tracking.
// ok is false for an "epoch" of sentences that say nothing about a fix (a
// ZDA on its own second, a GSV tail): it is no epoch, and must not clear a
// location stamp.
func (a *Assembler) finish() (f drivers.Fix, ok bool) {
	e := &a.cur
	var t time.Time
	timed := false
	if e.hasTOD {
		t, timed = a.resolveTime(e)
		a.done, a.haveDone = e.tod, true
	}
	if !e.statused {
		return drivers.Fix{}, false
	}
	f.Mode = drivers.FixNone
	if e.sats >= 0 || e.gsa {
		f.Sats = drivers.U8(uint8(min(max(e.sats, e.gsaSats, 0), math.MaxUint8)))
	}
	if timed {
		f.TimeUnixNano = t.UnixNano()
		f.RolloverWeeks = a.rollover
	}
	if !timed || !e.valid || e.invalid || e.posRank == rankNone {
		return f, true
	}
	switch {
	case e.gsaMode >= drivers.Fix2D:
		f.Mode = e.gsaMode
	case e.ubxMode >= drivers.Fix2D:
		f.Mode = e.ubxMode
	case e.alt.rank != rankNone:
		// No GSA: a receiver that prints an altitude is solving in 3D.
		f.Mode = drivers.Fix3D
	default:
		f.Mode = drivers.Fix2D
	}
	f.Lat, f.Lon = e.lat, e.lon
	vals := new([8]float64) // one allocation for the optional values
	dst := [...]**float64{&f.AltMSL, &f.SpeedMS, &f.TrackDeg, &f.HDOP, &f.PDOP, &f.VDOP, &f.HAccM, &f.VAccM}
	for i, o := range [...]opt{e.alt, e.speed, e.track, e.hdop, e.pdop, e.vdop, e.hacc, e.vacc} {
		if o.rank != rankNone {
			vals[i] = o.v
			*dst[i] = &vals[i]
		}
	}
	if e.quality != 0 {
		f.Quality = drivers.U8(e.quality)
	}
	return f, true
}

// dateCarry is how long after a dated epoch its date still dates the next
// ones (for receivers that print the date in only some epochs).
const dateCarry = int64(time.Hour)

// resolveTime dates the epoch: its own date (RMC, ZDA, UBX), checked and
// rollover-corrected, else the date of a dated epoch less than an hour
// before (rolled over at midnight). Nothing else: the system clock of a
// board without RTC or NTP is no evidence.
func (a *Assembler) resolveTime(e *epoch) (time.Time, bool) {
	const day = 24 * int64(time.Hour)
	var t time.Time
	switch {
	case e.hasDate:
		var weeks uint16
		var ok bool
		t, weeks, ok = a.plausible(time.Date(e.date.y, e.date.m, e.date.d, 0, 0, 0, 0, time.UTC).Add(time.Duration(e.tod)))
		if !ok {
			a.badDates++
			a.hasDate = false
			return time.Time{}, false
		}
		a.rollover = weeks
	case a.hasDate:
		d := a.date
		ahead := ((e.tod-a.lastTOD)%day + day) % day
		switch {
		case ahead < dateCarry && e.tod < a.lastTOD: // past midnight
			d = civilDate{y: d.y, m: d.m, d: d.d + 1}
		case ahead < dateCarry:
		case day-ahead < dateCarry && e.tod < a.lastTOD: // a little back, same day
		default:
			return time.Time{}, false
		}
		t = time.Date(d.y, d.m, d.d, 0, 0, 0, 0, time.UTC).Add(time.Duration(e.tod))
	default:
		return time.Time{}, false
	}
	a.date = civilDate{y: t.Year(), m: t.Month(), d: t.Day()}
	a.hasDate, a.lastTOD = true, e.tod
	return t, true
}

// plausible checks a receiver date against the floor and the ceiling 15
// years on, moving a date before the floor forward by whole 1024-week GPS
// rollover periods when that lands in range.
func (a *Assembler) plausible(t time.Time) (time.Time, uint16, bool) {
	return plausibleDate(t, a.DateFloor, a.DateCeiling)
}

func plausibleDate(t, floor, ceiling time.Time) (time.Time, uint16, bool) {
	if floor.IsZero() {
		floor = defaultDateFloor
	}
	if ceiling.IsZero() {
		ceiling = floor.AddDate(15, 0, 0)
	}
	var weeks uint16
	for t.Before(floor) && weeks < 4*1024 {
		t = t.Add(rolloverPeriod)
		weeks += 1024
	}
	if t.Before(floor) || t.After(ceiling) {
		return time.Time{}, 0, false
	}
	return t, weeks, true
}
