package attest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxSequenceItem bounds one item of a CBOR sequence. It is larger than
// MaxRecordSize so that an oversized record is reported as one malformed
// record, and only an absurd item stops the whole read.
const MaxSequenceItem = 1 << 20

// maxSequenceDepth bounds nesting while framing items, so a stream of
// nested array heads cannot exhaust the stack.
const maxSequenceDepth = 64

// ReadSequence reads a CBOR sequence (RFC 8742), such as a `queue export`
// file, and calls fn with the exact bytes of each top-level item, in order.
// fn may keep raw. It stops at the first error: a truncated or garbage item
// gives an error wrapping ErrMalformed that names the item's byte offset; an
// error from fn is returned unchanged. A clean end of input returns nil.
//
// It only frames items (checks they are well-formed CBOR heads and lengths);
// Decode judges whether an item is a record.
func ReadSequence(r io.Reader, fn func(raw []byte) error) error {
	s := itemScanner{br: bufio.NewReaderSize(r, 64<<10)}
	var off int64
	for {
		if _, err := s.br.Peek(1); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("attest: read sequence at byte offset %d: %w", off, err)
		}
		s.buf = nil
		if err := s.item(0); err != nil {
			switch {
			case err == errBreak:
				err = errors.New("stray break byte 0xff")
			case errors.Is(err, io.EOF):
				err = fmt.Errorf("truncated item, was the file cut short? (%w)", io.ErrUnexpectedEOF)
			case !errors.Is(err, errGarbage):
				// The reader failed: not the data's fault.
				return fmt.Errorf("attest: read sequence: item at byte offset %d: %w", off, err)
			}
			return fmt.Errorf("%w: read sequence: item at byte offset %d: %w", ErrMalformed, off, err)
		}
		off += int64(len(s.buf))
		if err := fn(s.buf); err != nil {
			return err
		}
	}
}

// itemScanner copies one CBOR data item from br into buf, walking its
// structure (RFC 8949 §3) without interpreting it.
type itemScanner struct {
	br  *bufio.Reader
	buf []byte
}

var (
	errBreak   = errors.New("break")
	errGarbage = errors.New("bad CBOR item")
)

func (s *itemScanner) read(n uint64) error {
	if n > MaxSequenceItem || uint64(len(s.buf))+n > MaxSequenceItem {
		return fmt.Errorf("%w: item larger than %d bytes", errGarbage, MaxSequenceItem)
	}
	start := len(s.buf)
	s.buf = append(s.buf, make([]byte, n)...)
	_, err := io.ReadFull(s.br, s.buf[start:])
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return err
}

// head reads one head and returns its major type, additional info and
// argument.
func (s *itemScanner) head() (major, ai byte, arg uint64, err error) {
	start := len(s.buf)
	if err := s.read(1); err != nil {
		return 0, 0, 0, err
	}
	b := s.buf[start]
	major, ai = b>>5, b&0x1f
	switch {
	case ai < 24:
		return major, ai, uint64(ai), nil
	case ai <= 27:
		n := uint64(1) << (ai - 24)
		if err := s.read(n); err != nil {
			return 0, 0, 0, err
		}
		var a [8]byte
		copy(a[8-n:], s.buf[start+1:])
		return major, ai, binary.BigEndian.Uint64(a[:]), nil
	case ai == 31:
		return major, ai, 0, nil
	}
	return 0, 0, 0, fmt.Errorf("%w: reserved additional information %d", errGarbage, ai)
}

func (s *itemScanner) item(depth int) error {
	if depth > maxSequenceDepth {
		return fmt.Errorf("%w: nested deeper than %d", errGarbage, maxSequenceDepth)
	}
	major, ai, arg, err := s.head()
	if err != nil {
		return err
	}
	if ai == 31 {
		switch major {
		case 7:
			return errBreak
		case 2, 3: // indefinite string: definite chunks of the same type
			for {
				cm, cai, n, err := s.head()
				if err != nil {
					return err
				}
				if cm == 7 && cai == 31 {
					return nil
				}
				if cm != major || cai == 31 {
					return fmt.Errorf("%w: bad chunk in indefinite-length string", errGarbage)
				}
				if err := s.read(n); err != nil {
					return err
				}
			}
		case 4, 5:
			for i := 0; ; i++ {
				err := s.item(depth + 1)
				if err == errBreak {
					if major == 5 && i%2 == 1 {
						return fmt.Errorf("%w: map ends after a key", errGarbage)
					}
					return nil
				}
				if err != nil {
					return err
				}
			}
		}
		return fmt.Errorf("%w: indefinite length on major type %d", errGarbage, major)
	}
	switch major {
	case 0, 1, 7:
		if major == 7 && ai == 24 && arg < 32 {
			return fmt.Errorf("%w: two-byte simple value %d", errGarbage, arg)
		}
		return nil
	case 2, 3:
		return s.read(arg)
	case 4, 5:
		n := arg
		if major == 5 {
			if n > MaxSequenceItem {
				return fmt.Errorf("%w: item larger than %d bytes", errGarbage, MaxSequenceItem)
			}
			n *= 2
		}
		// Every element takes at least one byte, so read's size limit ends
		// this loop long before a huge count would.
		for i := uint64(0); i < n; i++ {
			if err := s.item(depth + 1); err != nil {
				if err == errBreak {
					return fmt.Errorf("%w: break inside a definite-length container", errGarbage)
				}
				return err
			}
		}
		return nil
	case 6:
		err := s.item(depth + 1)
		if err == errBreak {
			return fmt.Errorf("%w: break after a tag", errGarbage)
		}
		return err
	}
	return nil
}
