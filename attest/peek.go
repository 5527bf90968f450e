package attest

import (
	"encoding/binary"
	"unicode/utf8"
)

// PeekKind returns a record's kind (payload key 5) by walking the CBOR heads
// of the envelope and the payload, without decoding or checking the rest: it
// costs a few hundred nanoseconds where Decode costs tens of microseconds.
// It is for routing, such as an MQTT topic level, of records this agent
// signed itself; whoever receives a record must still Decode and Verify it.
// Every record Decode accepts peeks to the same kind (FuzzPeekKind); ok is
// false when the bytes are not shaped like a record.
func PeekKind(raw []byte) (kind string, ok bool) {
	if len(raw) < 2 || raw[0] != tagSign1 || raw[1] != array4 {
		return "", false
	}
	r := cborReader{b: raw[2:]}
	if !r.skipBstr() || !r.skip(0) { // protected, unprotected
		return "", false
	}
	payload, ok := r.bstr()
	if !ok {
		return "", false
	}
	p := cborReader{b: payload}
	major, n, ok := p.head()
	if !ok || major != 5 {
		return "", false
	}
	for ; n > 0; n-- {
		kmaj, key, ok := p.head()
		if !ok || kmaj != 0 {
			return "", false
		}
		if key != 5 {
			if key > 5 || !p.skip(0) {
				return "", false
			}
			continue
		}
		vmaj, l, ok := p.head()
		if !ok || vmaj != 3 || l > uint64(len(p.b)) || !utf8.Valid(p.b[:l]) {
			return "", false
		}
		return string(p.b[:l]), true
	}
	return "", false
}

// cborReader walks definite-length CBOR items (all a record may hold).
type cborReader struct{ b []byte }

// head reads one item head: its major type and argument.
func (r *cborReader) head() (major byte, arg uint64, ok bool) {
	if len(r.b) == 0 {
		return 0, 0, false
	}
	major, info := r.b[0]>>5, r.b[0]&0x1f
	r.b = r.b[1:]
	var size int
	switch {
	case info < 24:
		return major, uint64(info), true
	case info == 24:
		size = 1
	case info == 25:
		size = 2
	case info == 26:
		size = 4
	case info == 27:
		size = 8
	default: // indefinite lengths and reserved values: not in a record
		return 0, 0, false
	}
	if len(r.b) < size {
		return 0, 0, false
	}
	var v [8]byte
	copy(v[8-size:], r.b[:size])
	r.b = r.b[size:]
	return major, binary.BigEndian.Uint64(v[:]), true
}

func (r *cborReader) bstr() ([]byte, bool) {
	major, n, ok := r.head()
	if !ok || major != 2 || n > uint64(len(r.b)) {
		return nil, false
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s, true
}

func (r *cborReader) skipBstr() bool {
	_, ok := r.bstr()
	return ok
}

// skip steps over one whole item; depth bounds nesting as Decode's limits do.
func (r *cborReader) skip(depth int) bool {
	if depth > maxNesting {
		return false
	}
	major, n, ok := r.head()
	if !ok {
		return false
	}
	switch major {
	case 0, 1, 7: // integers, simple values and floats: the head is all
		return true
	case 2, 3:
		if n > uint64(len(r.b)) {
			return false
		}
		r.b = r.b[n:]
		return true
	case 6: // a tag: its content follows
		return r.skip(depth + 1)
	case 5:
		if n > uint64(len(r.b))/2 {
			return false
		}
		n *= 2
	}
	if n > uint64(len(r.b)) { // an array: every element takes a byte at least
		return false
	}
	for ; n > 0; n-- {
		if !r.skip(depth + 1) {
			return false
		}
	}
	return true
}
