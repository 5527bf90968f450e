package sim

import (
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"time"

	nmea "github.com/adrianmo/go-nmea"

	"github.com/edge-agent/edge-agent/drivers"
)

// builtinTrack is a ten-minute drive through Berlin at 1 Hz, written by
// internal/gentrack: a cold start and a tunnel without fix, a few 2D epochs
// while satellites are reacquired, and a final stop.
//
// It ships gzipped (NMEA text compresses about 6:1) to keep the binary
// within its size budget; zcat shows it.
//
//go:embed track/drive.nmea.gz
var builtinTrackGz []byte

// builtinTrack is the decompressed track.
var builtinTrack = mustGunzip(builtinTrackGz)

func mustGunzip(b []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		panic("sim: built-in track: " + err.Error())
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		panic("sim: built-in track: " + err.Error())
	}
	return out
}

const knotsToMS = 0.514444 // 1852 m / 3600 s, as NMEA speeds are in knots

// runGNSS replays the track, one epoch per Interval, looping at its end.
//
// The track's own times only group sentences into epochs: each replayed fix
// is stamped with the clock reading at replay, so the first epoch is "now"
// and every fix is fresh for the location stamp whatever the Interval.
func (d *Dev) runGNSS(ctx context.Context, emit drivers.Emit) error {
	return d.loop(ctx, emit, func(i int) (drivers.Observation, error) {
		now := d.o.Now()
		fix := d.epochs[i%len(d.epochs)]
		fix.TimeUnixNano = now.UnixNano()
		if d.o.OnFix != nil {
			d.o.OnFix(fix)
		}
		return drivers.Observation{Kind: drivers.KindGNSSFix, Time: now, Data: fix}, nil
	})
}

// epoch gathers the sentences a receiver prints for one solution. It is a
// deliberately small merger, private to the simulator: drivers/gnss owns the
// full NMEA assembler.
type epoch struct {
	tod  nmea.Time // time of day shared by the epoch's RMC and GGA
	rmc  *nmea.RMC
	gga  *nmea.GGA
	mode string // GSA fix type "1", "2", "3"; "" when no GSA was seen
	date nmea.Date
}

// parseTrack splits NMEA text into epochs and merges each into a Fix. Lines
// other than RMC, GGA and GSA are ignored; a damaged RMC, GGA or GSA is an
// error naming the line, because a replayed track is meant to be clean.
func parseTrack(text []byte) ([]drivers.Fix, error) {
	var (
		parser nmea.SentenceParser
		fixes  []drivers.Fix
		cur    *epoch
		date   nmea.Date // the last RMC date: GGA carries none
	)
	flush := func() {
		if cur != nil && (cur.rmc != nil || cur.gga != nil) {
			if !cur.date.Valid {
				cur.date = date
			}
			fixes = append(fixes, cur.fix())
		}
		cur = nil
	}
	timed := func(t nmea.Time) {
		if cur == nil || cur.tod != t {
			flush()
			cur = &epoch{tod: t}
		}
	}
	for n, line := range bytes.Split(text, []byte("\n")) {
		raw := strings.TrimSpace(string(line))
		if len(raw) < 7 || raw[0] != '$' {
			continue
		}
		typ := raw[3:6]
		if typ != nmea.TypeRMC && typ != nmea.TypeGGA && typ != nmea.TypeGSA {
			continue
		}
		s, err := parser.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		switch m := s.(type) {
		case nmea.RMC:
			timed(m.Time)
			cur.rmc = &m
			if m.Date.Valid {
				date = m.Date
				cur.date = m.Date
			}
		case nmea.GGA:
			timed(m.Time)
			cur.gga = &m
		case nmea.GSA:
			if cur == nil { // before the first timed sentence: no epoch to join
				continue
			}
			// Multi-constellation receivers print one GSA per system; they
			// agree on the fix type, and the weakest claim wins if not.
			if cur.mode == "" || m.FixType < cur.mode {
				cur.mode = m.FixType
			}
		}
	}
	flush()
	if len(fixes) == 0 {
		return nil, ErrNoEpochs
	}
	return fixes, nil
}

// fix merges the epoch. An epoch the receiver marks invalid (RMC status V,
// GGA quality 0, GSA mode 1) has no position, whatever numbers it printed.
func (e *epoch) fix() drivers.Fix {
	f := drivers.Fix{TimeUnixNano: e.time().UnixNano(), Mode: drivers.FixNone}
	if (e.rmc != nil && e.rmc.Validity != nmea.ValidRMC) ||
		(e.gga != nil && e.gga.FixQuality == nmea.Invalid) || e.mode == "1" {
		return f
	}
	var latF, lonF []string // raw ddmm.mmmm fields, converted exactly below
	switch {
	case e.gga != nil:
		latF, lonF = e.gga.Fields[1:3], e.gga.Fields[3:5]
	case e.rmc != nil:
		latF, lonF = e.rmc.Fields[2:4], e.rmc.Fields[4:6]
	}
	lat, err1 := degrees(latF[0], latF[1], 2)
	lon, err2 := degrees(lonF[0], lonF[1], 3)
	if err1 != nil || err2 != nil {
		return f
	}
	f.Lat, f.Lon = lat, lon
	switch {
	case e.mode == "2" || e.mode == "3":
		f.Mode = drivers.FixMode(e.mode[0] - '0')
	case e.gga != nil && e.gga.Fields[8] != "":
		f.Mode = drivers.Fix3D // no GSA: an altitude means a 3D solution
	default:
		f.Mode = drivers.Fix2D
	}
	if e.rmc != nil {
		if e.rmc.Fields[6] != "" {
			f.SpeedMS = drivers.F64(e.rmc.Speed * knotsToMS)
		}
		if e.rmc.Fields[7] != "" {
			f.TrackDeg = drivers.F64(e.rmc.Course)
		}
	}
	if e.gga != nil {
		if f.Mode == drivers.Fix3D {
			f.AltMSL = drivers.F64(e.gga.Altitude)
		}
		if e.gga.Fields[6] != "" {
			f.Sats = drivers.U8(uint8(min(e.gga.NumSatellites, 255)))
		}
		if e.gga.Fields[7] != "" {
			f.HDOP = drivers.F64(e.gga.HDOP)
		}
	}
	return f
}

// time is the epoch's UTC time; without a date (no RMC yet) it falls on
// 1970-01-01, which replay overwrites anyway.
func (e *epoch) time() time.Time {
	t := e.tod
	year, month, day := 1970, time.January, 1
	if e.date.Valid {
		year, month, day = 2000+e.date.YY, time.Month(e.date.MM), e.date.DD
	}
	return time.Date(year, month, day, t.Hour, t.Minute, t.Second, t.Millisecond*1e6, time.UTC)
}

// degrees converts NMEA's d(d)dmm.mmmm to degrees, rounded once to the
// nearest float64. go-nmea computes value - 100*floor(value/100) in float64,
// which adds an error of up to ~1e-12 degrees; exact decimal arithmetic keeps
// the last bit of "full precision" honest.
func degrees(field, hemi string, degDigits int) (float64, error) {
	dot := strings.IndexByte(field, '.')
	if dot < 0 {
		dot = len(field)
	}
	if dot != degDigits+2 {
		return 0, fmt.Errorf("coordinate %q: want %d degree digits and 2 minute digits", field, degDigits)
	}
	// Only digits and the one dot: big.Rat would also take exponents, and
	// "1e999999999" would cost it minutes and gigabytes.
	if strings.Trim(field[:dot]+field[min(dot+1, len(field)):], "0123456789") != "" {
		return 0, fmt.Errorf("coordinate %q: want digits", field)
	}
	deg, err := strconv.ParseUint(field[:degDigits], 10, 16)
	if err != nil {
		return 0, fmt.Errorf("coordinate %q: %w", field, err)
	}
	mins, ok := new(big.Rat).SetString(field[degDigits:])
	if !ok || mins.Sign() < 0 || mins.Cmp(big.NewRat(60, 1)) >= 0 {
		return 0, fmt.Errorf("coordinate %q: minutes out of range", field)
	}
	r := mins.Quo(mins, big.NewRat(60, 1))
	r.Add(r, new(big.Rat).SetInt64(int64(deg)))
	v, _ := r.Float64()
	switch hemi {
	case "N", "E":
	case "S", "W":
		v = -v
	default:
		return 0, fmt.Errorf("coordinate %q: hemisphere %q", field, hemi)
	}
	return v, nil
}
