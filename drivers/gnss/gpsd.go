package gnss

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
)

// gpsd JSON protocol (gpsd_json(5)): after ?WATCH with json:true, gpsd sends
// one JSON object per line; TPV carries the time-position-velocity of an
// epoch, SKY the satellites and DOPs.
const gpsdWatch = `?WATCH={"enable":true,"json":true}` + "\n"

// gpsdMaxLine bounds one report: a SKY with every satellite of four
// constellations is a few kilobytes.
const gpsdMaxLine = 1 << 16

type gpsdReport struct {
	Class string `json:"class"`
	// TPV
	Mode   int      `json:"mode"` // 0 unknown, 1 no fix, 2 2D, 3 3D
	Status int      `json:"status"`
	Time   string   `json:"time"`
	Lat    *float64 `json:"lat"`
	Lon    *float64 `json:"lon"`
	AltMSL *float64 `json:"altMSL"`
	Alt    *float64 `json:"alt"` // gpsd < 3.20: MSL altitude
	Speed  *float64 `json:"speed"`
	Track  *float64 `json:"track"`
	// SKY
	HDOP       *float64 `json:"hdop"`
	PDOP       *float64 `json:"pdop"`
	VDOP       *float64 `json:"vdop"`
	USat       *int     `json:"uSat"`
	Satellites []struct {
		Used bool `json:"used"`
	} `json:"satellites"`
}

// gpsd TPV status values that are not a satellite fix: dead reckoning only,
// surveyed time, simulated (gpsd_json(5)).
const (
	gpsdStatusDR        = 5
	gpsdStatusTime      = 7
	gpsdStatusSimulated = 8
)

func (d *Dev) gpsdSession(ctx context.Context, emit drivers.Emit, healthy *bool) error {
	var dl net.Dialer
	dl.Timeout = 5 * time.Second
	conn, err := dl.DialContext(ctx, "tcp", d.o.GPSDAddr)
	d.mu.Lock()
	d.stats.OpenError = ""
	if err != nil {
		d.stats.OpenError = err.Error()
	}
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("gnss: dial gpsd %s: %w", d.o.GPSDAddr, err)
	}
	defer conn.Close()
	// Reads block with no deadline while no epoch is pending (gpsd is
	// silent while no receiver is attached); closing the connection is how
	// cancellation reaches them.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if _, err := conn.Write([]byte(gpsdWatch)); err != nil {
		return fmt.Errorf("gnss: send WATCH to gpsd %s: %w", d.o.GPSDAddr, err)
	}
	d.connected()
	d.log.Info("gpsd connected", "addr", d.o.GPSDAddr)

	g := gpsdEpochs{floor: d.o.DateFloor, ceiling: d.o.DateCeiling, counts: d.Stats().Counts}
	rd := bufio.NewReaderSize(conn, gpsdMaxLine)
	var line []byte
	for {
		if g.pending != nil {
			conn.SetReadDeadline(g.heard.Add(quietFlush))
		} else {
			conn.SetReadDeadline(time.Time{})
		}
		chunk, err := rd.ReadSlice('\n')
		at := d.o.Now()
		line = append(line, chunk...)
		var eps []epochOut
		switch {
		case err == nil:
			*healthy = true
			eps = g.report(line, at)
			line = line[:0]
		case errors.Is(err, bufio.ErrBufferFull):
			g.counts.Garbled++ // keep reading to the newline, then drop it
			line = line[:0]
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			eps = g.flush() // gpsd went quiet: the epoch is complete
		default:
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("gnss: read gpsd %s: connection closed by gpsd", d.o.GPSDAddr)
			}
			return fmt.Errorf("gnss: read gpsd %s: %w", d.o.GPSDAddr, err)
		}
		if err := d.deliver(ctx, emit, eps, &g.counts, g.last); err != nil {
			return err
		}
		g.last = ""
	}
}

// gpsdEpochs merges gpsd's reports into epochs. gpsd sends a TPV whenever a
// sentence of the cycle updates its view, so one epoch comes as several
// TPVs with the same time, the first with a speed gpsd derived from two
// positions and no track. They are merged, later fields winning, and the
// epoch is complete when a TPV with another time arrives or gpsd goes quiet.
type gpsdEpochs struct {
	floor   time.Time
	ceiling time.Time
	counts  Counts
	last    string
	pending *gpsdReport // merged TPV of the open epoch
	at      time.Time   // when its first TPV arrived
	heard   time.Time   // when its last TPV arrived
	sky     *gpsdReport
}

func (g *gpsdEpochs) report(line []byte, at time.Time) []epochOut {
	g.counts.Bytes += uint64(len(line))
	var r gpsdReport
	if err := json.Unmarshal(line, &r); err != nil {
		g.counts.Garbled++
		g.last = "gpsd report: " + err.Error()
		return nil
	}
	switch r.Class {
	case "TPV":
		g.counts.Sentences++
		var out []epochOut
		if g.pending != nil && (r.Time == "" || r.Time != g.pending.Time) {
			out = g.flush()
		}
		if g.pending == nil {
			g.pending, g.at = &r, at
		} else {
			g.pending.mergeTPV(&r)
		}
		g.heard = time.Now() // pacing: Opts.Now may be a test's fixed clock
		if r.Time == "" {    // an untimed TPV is its own (no-fix) epoch
			out = append(out, g.flush()...)
		}
		return out
	case "SKY":
		g.counts.Sentences++
		g.sky = &r
	default: // VERSION, DEVICES, WATCH, ATT, PPS, TOFF, …
		g.counts.Unknown++
	}
	return nil
}

func (g *gpsdEpochs) flush() []epochOut {
	if g.pending == nil {
		return nil
	}
	f, badDate := gpsdFix(g.pending, g.sky, g.floor, g.ceiling)
	if badDate {
		g.counts.BadDate++
		g.last = "gpsd time " + g.pending.Time + " is not plausible"
	}
	g.pending = nil
	return []epochOut{{fix: f, at: g.at}}
}

// mergeTPV lays a later TPV of the same epoch over r.
func (r *gpsdReport) mergeTPV(n *gpsdReport) {
	r.Mode, r.Status = n.Mode, n.Status
	for _, f := range []struct{ dst, src **float64 }{
		{&r.Lat, &n.Lat}, {&r.Lon, &n.Lon}, {&r.AltMSL, &n.AltMSL}, {&r.Alt, &n.Alt},
		{&r.Speed, &n.Speed}, {&r.Track, &n.Track},
	} {
		if *f.src != nil {
			*f.dst = *f.src
		}
	}
}

// gpsd TPV status values (gpsd_json(5)) mapped to GGA fix quality.
var gpsdQuality = map[int]uint8{
	1: drivers.QualityGPS, 2: drivers.QualityDGPS, 3: drivers.QualityRTKFixed, 4: drivers.QualityRTKFloat,
}

// gpsdFix converts a TPV (and the latest SKY) to a Fix, with the same
// conservatism as the NMEA path: no time, an implausible date, mode < 2 or
// a non-satellite status means no position.
func gpsdFix(r, sky *gpsdReport, floor, ceiling time.Time) (f drivers.Fix, badDate bool) {
	f.Mode = drivers.FixNone
	t, err := time.Parse(time.RFC3339Nano, r.Time)
	var weeks uint16
	if err == nil {
		var ok bool
		if t, weeks, ok = plausibleDate(t, floor, ceiling); ok {
			f.TimeUnixNano, f.RolloverWeeks = t.UnixNano(), weeks
		} else {
			err, badDate = errors.New("implausible date"), true
		}
	}
	if sky != nil {
		switch {
		case sky.USat != nil:
			f.Sats = drivers.U8(uint8(min(max(*sky.USat, 0), 255)))
		case len(sky.Satellites) > 0:
			n := 0
			for _, s := range sky.Satellites {
				if s.Used {
					n++
				}
			}
			f.Sats = drivers.U8(uint8(min(n, 255)))
		}
	}
	if err != nil || r.Mode < 2 || r.Lat == nil || r.Lon == nil ||
		r.Status == gpsdStatusDR || r.Status == gpsdStatusTime || r.Status == gpsdStatusSimulated ||
		*r.Lat < -90 || *r.Lat > 90 || *r.Lon < -180 || *r.Lon > 180 {
		return f, badDate
	}
	f.Mode = drivers.FixMode(min(r.Mode, 3))
	f.Lat, f.Lon = *r.Lat, *r.Lon
	switch {
	case r.AltMSL != nil:
		f.AltMSL = r.AltMSL
	case r.Alt != nil:
		f.AltMSL = r.Alt
	}
	f.SpeedMS, f.TrackDeg = r.Speed, r.Track
	if q, ok := gpsdQuality[max(r.Status, 1)]; ok {
		f.Quality = drivers.U8(q)
	}
	if sky != nil {
		f.HDOP, f.PDOP, f.VDOP = sky.HDOP, sky.PDOP, sky.VDOP
	}
	return f, false
}

// probeGPSD reports Skipped when nothing listens at GPSDAddr and Loaded when
// gpsd answers the connection with its VERSION banner.
func (d *Dev) probeGPSD(ctx context.Context) (drivers.Probe, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var dl net.Dialer
	conn, err := dl.DialContext(ctx, "tcp", d.o.GPSDAddr)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return drivers.Skipped, fmt.Errorf("gnss: probe: %w: nothing listens at %s: start gpsd or fix gpsd_addr", ErrNoGPSD, d.o.GPSDAddr)
		}
		return drivers.Skipped, fmt.Errorf("gnss: probe: %w at %s: %w", ErrNoGPSD, d.o.GPSDAddr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(dl)
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return drivers.Failed, fmt.Errorf("gnss: probe: read banner from %s: %w: is it gpsd?", d.o.GPSDAddr, err)
	}
	var r gpsdReport
	if json.Unmarshal(line, &r) != nil || r.Class != "VERSION" {
		return drivers.Failed, fmt.Errorf("gnss: probe: %s does not speak the gpsd protocol: check gpsd_addr", d.o.GPSDAddr)
	}
	return drivers.Loaded, nil
}
