package sim

import (
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"

	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/gnss"
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

// parseTrack replays NMEA text through the gnss driver's Assembler, the one
// a real receiver's sentences go through, so the simulator's fixes are merged
// exactly as the device's would be. Sentences the assembler does not use are
// ignored; any other refused line is an error naming it, because a replayed
// track is meant to be clean.
func parseTrack(text []byte) ([]drivers.Fix, error) {
	a := gnss.NewAssembler()
	var fixes []drivers.Fix
	for n, line := range bytes.Split(text, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] != '$' {
			continue
		}
		fix, complete, err := a.Feed(line)
		if complete {
			fixes = append(fixes, fix)
		}
		if err != nil && !errors.Is(err, gnss.ErrUnknown) {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
	}
	if fix, ok := a.Flush(); ok {
		fixes = append(fixes, fix)
	}
	if len(fixes) == 0 {
		return nil, ErrNoEpochs
	}
	return fixes, nil
}
