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
	Bytes       uint64 // bytes read from the port (gpsd: report lines)
	Sentences   uint64 // NMEA sentences used by the assembler
	UBXFrames   uint64 // UBX NAV-PVT, NAV-SOL and NAV-POSLLH frames used
	UBXOther    uint64 // other UBX frames with a good checksum, or any while ubx is off
	BadChecksum uint64 // NMEA sentences and UBX frames whose checksum did not match
	NoChecksum  uint64 // NMEA sentences without "*hh" while checksums are required
	Garbled     uint64 // truncated or overlong lines, malformed fields, runs of binary noise
	Invalid     uint64 // checksum-valid input with an impossible value (NaN, HDOP -1, …)
	Late        uint64 // sentences of an epoch already completed, dropped
	BadDate     uint64 // epochs whose date was refused as implausible
	TimeBack    uint64 // epochs not signed because their time was not after the last signed one
	Unknown     uint64 // well-formed but unused: proprietary and other sentence types
}

// Rejected is the number of inputs refused for a fault (not the unused ones).
func (c Counts) Rejected() uint64 {
	return c.BadChecksum + c.NoChecksum + c.Garbled + c.Invalid + c.Late + c.BadDate + c.TimeBack
}

// quietFlush is how long the receiver must stay silent before the pending
// epoch is completed without waiting for the next one. Shorter pauses
// happen inside one epoch's burst (4800 baud, a loaded board); a sentence
// that still arrives after the flush is dropped as late, never signed twice.
const quietFlush = 500 * time.Millisecond

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
	last   string    // the last rejection, for the log
	at     time.Time // arrival time of the pending epoch's first timed sentence
	now    time.Time // arrival time of the current write
	heard  time.Time // monotonic arrival time of the last bytes
	emit   func(fix drivers.Fix, at time.Time)
	trace  traceFunc
}

func newDecoder(ubx bool, asm *Assembler, emit func(drivers.Fix, time.Time)) *decoder {
	return &decoder{asm: asm, ubx: ubx, emit: emit, buf: make([]byte, 0, maxLine)}
}

// write consumes bytes that arrived at time at.
func (d *decoder) write(p []byte, at time.Time) {
	d.now, d.heard = at, time.Now() // pacing, on the monotonic clock: Opts.Now may be a test's fixed clock
	d.counts.Bytes += uint64(len(p))
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
	d.at = time.Time{}
	d.counts.BadDate = d.asm.BadDates()
}

// quiet is a read timeout: the pending epoch is completed once the receiver
// has been silent for quietFlush.
func (d *decoder) quiet(at time.Time) {
	if time.Since(d.heard) >= quietFlush {
		d.flush(at)
	}
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
	if !d.ubx || ubxFrameLen(b[2], b[3]) != n {
		d.counts.UBXOther++
		return
	}
	prev := d.at
	fix, complete, err := d.asm.FeedUBX(b[2], b[3], payload)
	if err != nil {
		d.counts.Garbled++
		d.last = err.Error()
		return
	}
	d.counts.UBXFrames++
	d.accepted(payload, fix, complete, prev)
}

func (d *decoder) line(b []byte) {
	prev := d.at
	fix, complete, err := d.asm.Feed(b)
	if complete { // a late sentence can still complete an untimed tail
		d.complete(fix, prev)
	}
	switch {
	case err == nil:
		d.counts.Sentences++
		d.accepted(b, drivers.Fix{}, false, prev)
		return
	case errors.Is(err, ErrUnknown):
		d.counts.Unknown++
		return
	case errors.Is(err, ErrBadChecksum):
		d.counts.BadChecksum++
	case errors.Is(err, ErrNoChecksum):
		d.counts.NoChecksum++
	case errors.Is(err, ErrInvalidValue):
		d.counts.Invalid++
	case errors.Is(err, ErrLate):
		d.counts.Late++
	default:
		d.counts.Garbled++
	}
	d.last = err.Error()
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
	d.counts.BadDate = d.asm.BadDates()
	if d.trace != nil {
		d.trace(nil, &f)
	}
	d.emit(f, at)
}
