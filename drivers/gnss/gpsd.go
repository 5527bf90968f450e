package gnss

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
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
	if err != nil {
		return fmt.Errorf("gnss: dial gpsd %s: %w", d.o.GPSDAddr, err)
	}
	defer conn.Close()
	// Reads block with no deadline (gpsd is silent while no receiver is
	// attached); closing the connection is how cancellation reaches them.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if _, err := conn.Write([]byte(gpsdWatch)); err != nil {
		return fmt.Errorf("gnss: send WATCH to gpsd %s: %w", d.o.GPSDAddr, err)
	}
	d.connected()
	d.log.Info("gpsd connected", "addr", d.o.GPSDAddr)

	counts := d.Stats().Counts
	var sky *gpsdReport
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 4096), gpsdMaxLine)
	for sc.Scan() {
		*healthy = true
		at := d.o.Now()
		var r gpsdReport
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			counts.Garbled++
			continue
		}
		var eps []epochOut
		switch r.Class {
		case "TPV":
			counts.Sentences++
			eps = append(eps, epochOut{fix: gpsdFix(&r, sky), at: at})
		case "SKY":
			counts.Sentences++
			sky = &r
		default: // VERSION, DEVICES, WATCH, ATT, PPS, TOFF, …
			counts.Unknown++
		}
		if err := d.deliver(ctx, emit, eps, &counts); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("gnss: read gpsd %s: %w", d.o.GPSDAddr, err)
	}
	return fmt.Errorf("gnss: read gpsd %s: connection closed by gpsd", d.o.GPSDAddr)
}

// gpsdFix converts a TPV (and the latest SKY of the same epoch) to a Fix,
// with the same conservatism as the NMEA path: no time, mode < 2 or a
// non-satellite status means no position.
func gpsdFix(r, sky *gpsdReport) drivers.Fix {
	f := drivers.Fix{Mode: drivers.FixNone}
	t, err := time.Parse(time.RFC3339Nano, r.Time)
	if err == nil {
		f.TimeUnixNano = t.UnixNano()
	}
	if sky != nil {
		switch {
		case sky.USat != nil:
			f.Sats = uint8(min(max(*sky.USat, 0), 255))
		default:
			n := 0
			for _, s := range sky.Satellites {
				if s.Used {
					n++
				}
			}
			f.Sats = uint8(min(n, 255))
		}
	}
	if err != nil || r.Mode < 2 || r.Lat == nil || r.Lon == nil ||
		r.Status == gpsdStatusDR || r.Status == gpsdStatusTime || r.Status == gpsdStatusSimulated ||
		*r.Lat < -90 || *r.Lat > 90 || *r.Lon < -180 || *r.Lon > 180 {
		return f
	}
	f.Mode = drivers.FixMode(min(r.Mode, 3))
	f.Lat, f.Lon = *r.Lat, *r.Lon
	switch {
	case r.AltMSL != nil:
		f.AltMSL = *r.AltMSL
	case r.Alt != nil:
		f.AltMSL = *r.Alt
	}
	if r.Speed != nil {
		f.SpeedMS = *r.Speed
	}
	if r.Track != nil {
		f.TrackDeg = *r.Track
	}
	if sky != nil && sky.HDOP != nil {
		f.HDOP = *sky.HDOP
	}
	return f
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
