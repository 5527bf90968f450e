package gnss

import (
	"errors"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
)

// maxLine bounds an NMEA line. The standard allows 82 characters; some
// receivers print longer proprietary sentences, and a line without an end is
// a lost CR/LF or a wrong baud rate, not something to buffer forever.
const maxLine = 256

// Counts are the sentence-level counters of a byte stream.
type Counts struct {
	Sentences   uint64 // NMEA sentences used by the assembler
	UBXFrames   uint64 // UBX NAV-PVT frames used
	BadChecksum uint64 // NMEA sentences and UBX frames whose checksum did not match
	Garbled     uint64 // truncated or overlong lines, malformed fields, runs of binary noise
	Unknown     uint64 // well-formed but unused: proprietary and other sentence types, other UBX messages
}

type decState uint8

const (
	stIdle  decState = iota // between sentences
	stLine                  // inside a "$…" line
	stSync                  // saw 0xB5, want 0x62
	stFrame                 // inside a UBX frame
)

// traceFunc observes the decoder for the fuzz oracle: raw is an accepted NMEA
// line or NAV-PVT payload; fix is set for a completed epoch.
type traceFunc func(raw []byte, fix *drivers.Fix)

// decoder splits a receiver's byte stream into NMEA lines and UBX frames and
// feeds the assembler. It never reads: the serial loop pushes whatever bytes
// a read returned, so a (0, nil) read timeout is simply no call. Not safe for
// concurrent use.
type decoder struct {
	asm    *Assembler
	ubx    bool // decode NAV-PVT (other UBX frames are always skipped)
	state  decState
	noise  bool // inside a run of noise, counted once
	buf    []byte
	replay []byte // bytes of a rejected UBX frame, to rescan after its sync
	counts Counts
	at     time.Time // arrival time of the pending epoch's first timed sentence
	now    time.Time // arrival time of the current write
	emit   func(fix drivers.Fix, at time.Time)
	trace  traceFunc
}

func newDecoder(ubx bool, asm *Assembler, emit func(drivers.Fix, time.Time)) *decoder {
	return &decoder{asm: asm, ubx: ubx, emit: emit, buf: make([]byte, 0, maxLine)}
}

// write consumes bytes that arrived at time at.
func (d *decoder) write(p []byte, at time.Time) {
	d.now = at
	for _, c := range p {
		d.step(c)
		for len(d.replay) > 0 {
			c := d.replay[0]
			d.replay = d.replay[1:]
			d.step(c)
		}
	}
}

// flush completes the pending epoch (receiver quiet, or stream closed). A
// partial line or frame is kept: the next read may finish it.
func (d *decoder) flush(at time.Time) {
	d.now = at
	if f, ok := d.asm.Flush(); ok {
		d.complete(f, d.at)
	}
}

// reset forgets a partial line or frame, after a reconnect.
func (d *decoder) reset() {
	d.state, d.noise, d.buf, d.replay = stIdle, false, d.buf[:0], nil
}

func (d *decoder) garbage() {
	if !d.noise {
		d.counts.Garbled++
		d.noise = true
	}
}

func (d *decoder) step(c byte) {
	switch d.state {
	case stIdle:
		switch {
		case c == '$' || c == '!':
			d.noise = false
			d.state, d.buf = stLine, append(d.buf[:0], c)
		case c == ubxSync1:
			d.state = stSync
		case c == '\r' || c == '\n':
			// blank line, or the LF of a CR LF
		default:
			d.garbage()
		}
	case stLine:
		switch {
		case c == '\r' || c == '\n':
			d.state = stIdle
			d.line(d.buf)
		case c == '$' || c == '!':
			d.counts.Garbled++ // the previous line was cut short
			d.buf = append(d.buf[:0], c)
		case c < 0x20 || c > 0x7e || len(d.buf) >= maxLine:
			d.counts.Garbled++
			d.noise = true // the rest of this run is the same damage
			d.state = stIdle
			if c == ubxSync1 { // a UBX frame may follow a cut line
				d.state = stSync
			}
		default:
			d.buf = append(d.buf, c)
		}
	case stSync:
		if c == ubxSync2 {
			d.noise = false
			d.state, d.buf = stFrame, append(d.buf[:0], ubxSync1, ubxSync2)
			return
		}
		d.garbage()
		d.state = stIdle
		d.step(c)
	case stFrame:
		d.buf = append(d.buf, c)
		if len(d.buf) < ubxHeaderLen {
			return
		}
		n := int(d.buf[4]) | int(d.buf[5])<<8
		if n+ubxOverhead > ubxMaxFrame {
			d.reject()
			return
		}
		if len(d.buf) == n+ubxOverhead {
			d.frame(d.buf, n)
		}
	}
}

// reject drops a false or damaged UBX frame and rescans its bytes after the
// first sync byte, which may hold real sentences.
func (d *decoder) reject() {
	rest := append(append([]byte(nil), d.buf[1:]...), d.replay...)
	d.state, d.buf, d.replay = stIdle, d.buf[:0], rest
}

func (d *decoder) frame(b []byte, n int) {
	ca, cb := ubxChecksum(b[2 : ubxHeaderLen+n])
	if ca != b[ubxHeaderLen+n] || cb != b[ubxHeaderLen+n+1] {
		d.counts.BadChecksum++
		d.reject()
		return
	}
	d.state = stIdle
	payload := b[ubxHeaderLen : ubxHeaderLen+n]
	if !d.ubx || b[2] != ubxClassNAV || b[3] != ubxIDPVT || n != navPVTLen {
		d.counts.Unknown++
		return
	}
	prev := d.at
	fix, complete, err := d.asm.FeedNAVPVT(payload)
	if err != nil {
		d.counts.Garbled++
		return
	}
	d.counts.UBXFrames++
	d.accepted(payload, fix, complete, prev)
}

func (d *decoder) line(b []byte) {
	prev := d.at
	fix, complete, err := d.asm.Feed(b)
	switch {
	case err == nil:
		d.counts.Sentences++
		d.accepted(b, fix, complete, prev)
	case errors.Is(err, ErrBadChecksum):
		d.counts.BadChecksum++
	case errors.Is(err, ErrUnknown):
		d.counts.Unknown++
	default:
		d.counts.Garbled++
	}
}

func (d *decoder) accepted(raw []byte, fix drivers.Fix, complete bool, prev time.Time) {
	if complete {
		d.complete(fix, prev)
	}
	if d.asm.started {
		d.at = d.now
	}
	if d.trace != nil {
		d.trace(raw, nil)
	}
}

func (d *decoder) complete(f drivers.Fix, at time.Time) {
	if at.IsZero() {
		at = d.now
	}
	d.at = time.Time{}
	if d.trace != nil {
		d.trace(nil, &f)
	}
	d.emit(f, at)
}
