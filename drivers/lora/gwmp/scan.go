package gwmp

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// decodePush decodes a PUSH_DATA body. The shape forwarders send on every
// frame (one "rxpk" array of flat objects with the keys of RXPK) goes
// through scanPush, a hand-written scanner that was a seventh of the
// daemon's CPU as encoding/json at 1,000 frames/s; anything else — "stat",
// unknown or repeated keys, escapes, "rsig", a value encoding/json would
// refuse — goes through encoding/json, so both give the same PushBody
// (FuzzScanPush checks they agree on every body the scanner accepts).
func decodePush(body []byte) (PushBody, error) {
	if pb, ok := scanPush(body); ok {
		return pb, nil
	}
	var pb PushBody
	err := json.Unmarshal(body, &pb)
	return pb, err
}

// scanner reads JSON from b at i; every method reports false, leaving the
// body to encoding/json, on anything outside the subset it knows.
type scanner struct {
	b    []byte
	i    int
	vals *rxpkVals // of the element being read
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips white space and consumes c if it comes next. Not inlined:
// inlined at each of its calls it cost 2 KiB of code on arm64.
//
//go:noinline
func (s *scanner) next(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// null consumes a JSON null.
func (s *scanner) null() bool {
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// str returns a string token with its quotes: one without escapes or
// control characters, whose text is then exactly its bytes.
func (s *scanner) str() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			tok := s.b[s.i : j+1]
			s.i = j + 1
			return tok, true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// text returns a string token's text; invalid UTF-8 (which encoding/json
// replaces) is left to encoding/json. The values of modu, datr and codr
// seen on every frame come without an allocation.
func (s *scanner) text() (string, bool) {
	tok, ok := s.str()
	if !ok || !utf8.Valid(tok) {
		return "", false
	}
	for _, c := range common {
		if string(tok[1:len(tok)-1]) == c {
			return c, true
		}
	}
	return string(tok[1 : len(tok)-1]), true
}

var common = [...]string{"LORA", "FSK", "4/5", "4/6", "4/7", "4/8", "SF7BW125", "SF8BW125", "SF9BW125", "SF10BW125", "SF11BW125", "SF12BW125", "SF7BW250", "SF8BW500"}

// number returns a number token checked against the JSON grammar (RFC 8259
// §6), and whether it has a fraction or an exponent.
func (s *scanner) number() (tok []byte, isFloat, ok bool) {
	b, j := s.b, s.i
	digits := func() bool {
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j > k
	}
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case !digits():
		return nil, false, false
	}
	if j < len(b) && b[j] == '.' {
		j++
		if !digits() {
			return nil, false, false
		}
		isFloat = true
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if !digits() {
			return nil, false, false
		}
		isFloat = true
	}
	tok = b[s.i:j]
	s.i = j
	return tok, isFloat, true
}

// uint reads an unsigned integer of the given bits as encoding/json does.
func (s *scanner) uint(bits int) (uint64, bool) {
	tok, isFloat, ok := s.number()
	if !ok || isFloat {
		return 0, false
	}
	v, err := strconv.ParseUint(string(tok), 10, bits)
	return v, err == nil
}

func (s *scanner) int(bits int) (int64, bool) {
	tok, isFloat, ok := s.number()
	if !ok || isFloat {
		return 0, false
	}
	v, err := strconv.ParseInt(string(tok), 10, bits)
	return v, err == nil
}

func (s *scanner) float() (float64, bool) {
	tok, _, ok := s.number()
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(tok), 64)
	return v, err == nil
}

func scanPush(body []byte) (PushBody, bool) {
	s := scanner{b: body}
	var pb PushBody
	if !s.next('{') {
		return pb, false
	}
	if !s.next('}') {
		s.ws()
		if key, ok := s.str(); !ok || string(key) != `"rxpk"` || !s.next(':') || !s.next('[') {
			return pb, false
		}
		pb.RXPK = make([]RXPK, 0, 1)
		if !s.next(']') {
			for {
				pb.RXPK = append(pb.RXPK, RXPK{})
				if !s.rxpk(&pb.RXPK[len(pb.RXPK)-1]) {
					return pb, false
				}
				if s.next(']') {
					break
				}
				if !s.next(',') {
					return pb, false
				}
			}
		}
		if !s.next('}') {
			return pb, false
		}
	} else {
		pb.RXPK = []RXPK{}
	}
	s.ws()
	return pb, s.i == len(s.b)
}

// rxpk fields, for finding a repeated key (encoding/json's merging of
// repeats is left to it).
const (
	fJVer = 1 << iota
	fTime
	fTmms
	fTmst
	fFTime
	fFreq
	fChan
	fRFCh
	fMid
	fStat
	fModu
	fDatr
	fCodr
	fRSSI
	fRSSIS
	fLSNR
	fFoff
	fSize
	fData
	fBrd
)

// rxpkVals holds the optional (pointer) fields of one RXPK: one
// allocation instead of one per field.
type rxpkVals struct {
	jver, stat  int
	tmms        uint64
	tmst, ftime uint32
	rssi, rssis float64
	lsnr        float64
	foff        int64
	size        uint16
	mid, brd    uint8
}

// rxpk reads one object into pk, which is zero.
func (s *scanner) rxpk(pk *RXPK) bool {
	s.vals = new(rxpkVals)
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	var seen uint32
	for {
		s.ws()
		key, ok := s.str()
		if !ok || !s.next(':') {
			return false
		}
		s.ws()
		var f uint32
		if s.null() { // encoding/json leaves every RXPK field as it was
			f = s.field(key)
			if f == 0 {
				return false
			}
		} else if f, ok = s.value(pk, key); !ok {
			return false
		}
		if seen&f != 0 {
			return false
		}
		seen |= f
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// field names the bit of a known key, 0 for any other.
func (s *scanner) field(key []byte) uint32 {
	var pk RXPK
	f, _ := (&scanner{b: []byte("null"), vals: new(rxpkVals)}).value(&pk, key)
	return f
}

// value reads the value of key into pk.
func (s *scanner) value(pk *RXPK, key []byte) (uint32, bool) {
	var ok bool
	v := s.vals
	switch string(key) {
	case `"jver"`:
		pk.JVer = &v.jver
		return fJVer, s.intTo(pk.JVer)
	case `"time"`:
		pk.Time, ok = s.text()
		return fTime, ok
	case `"tmms"`:
		v.tmms, ok = s.uint(64)
		pk.Tmms = &v.tmms
		return fTmms, ok
	case `"tmst"`:
		pk.Tmst = &v.tmst
		return fTmst, s.u32(pk.Tmst)
	case `"ftime"`:
		pk.FTime = &v.ftime
		return fFTime, s.u32(pk.FTime)
	case `"freq"`:
		var tok []byte
		tok, _, ok = s.number()
		return fFreq, ok && pk.Freq.UnmarshalJSON(tok) == nil
	case `"chan"`:
		return fChan, s.u8(&pk.Chan)
	case `"rfch"`:
		return fRFCh, s.u8(&pk.RFCh)
	case `"mid"`:
		pk.Mid = &v.mid
		return fMid, s.u8(pk.Mid)
	case `"stat"`:
		pk.Stat = &v.stat
		return fStat, s.intTo(pk.Stat)
	case `"modu"`:
		pk.Modu, ok = s.text()
		return fModu, ok
	case `"datr"`:
		if s.i < len(s.b) && s.b[s.i] == '"' {
			pk.Datr.LoRa, ok = s.text()
			return fDatr, ok
		}
		return fDatr, s.u32(&pk.Datr.FSK)
	case `"codr"`:
		pk.Codr, ok = s.text()
		return fCodr, ok
	case `"rssi"`:
		pk.RSSI = &v.rssi
		return fRSSI, s.floatTo(pk.RSSI)
	case `"rssis"`:
		pk.RSSIS = &v.rssis
		return fRSSIS, s.floatTo(pk.RSSIS)
	case `"lsnr"`:
		pk.LSNR = &v.lsnr
		return fLSNR, s.floatTo(pk.LSNR)
	case `"foff"`:
		v.foff, ok = s.int(64)
		pk.Foff = &v.foff
		return fFoff, ok
	case `"size"`:
		var n uint64
		n, ok = s.uint(16)
		v.size = uint16(n)
		pk.Size = &v.size
		return fSize, ok
	case `"data"`:
		var tok []byte
		tok, ok = s.str()
		return fData, ok && pk.Data.UnmarshalJSON(tok) == nil
	case `"brd"`:
		pk.Brd = &v.brd
		return fBrd, s.u8(pk.Brd)
	}
	return 0, false
}

func (s *scanner) u8(dst *uint8) bool {
	v, ok := s.uint(8)
	*dst = uint8(v)
	return ok
}

func (s *scanner) u32(dst *uint32) bool {
	v, ok := s.uint(32)
	*dst = uint32(v)
	return ok
}

func (s *scanner) intTo(dst *int) bool {
	v, ok := s.int(strconv.IntSize)
	*dst = int(v)
	return ok
}

func (s *scanner) floatTo(dst *float64) bool {
	v, ok := s.float()
	*dst = v
	return ok
}
