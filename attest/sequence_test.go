package attest

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadSequence(t *testing.T) {
	s := testSigner(t, 0)
	recs := newChain(t, s, 1).counters(3)
	stream := bytes.Join(recs, nil)

	tests := []struct {
		name  string
		in    []byte
		want  [][]byte
		err   error  // wrapped by the returned error, nil for success
		offst string // byte offset the error must name
	}{
		{"empty", nil, nil, nil, ""},
		{"records", stream, recs, nil, ""},
		{"scalars and indefinite items", []byte{0x01, 0x9f, 0x01, 0x5f, 0x41, 0x00, 0xff, 0xff, 0xbf, 0x61, 'a', 0xf6, 0xff, 0xc2, 0x40},
			[][]byte{{0x01}, {0x9f, 0x01, 0x5f, 0x41, 0x00, 0xff, 0xff}, {0xbf, 0x61, 'a', 0xf6, 0xff}, {0xc2, 0x40}}, nil, ""},
		{"truncated last record", stream[:len(stream)-10], recs[:2], ErrMalformed, "offset " + strconv.Itoa(len(recs[0])+len(recs[1]))},
		{"truncated head", append(bytes.Clone(stream), 0x1b, 0x00), recs, ErrMalformed, "offset " + strconv.Itoa(len(stream))},
		{"stray break", append(bytes.Clone(recs[0]), 0xff), recs[:1], ErrMalformed, "offset " + strconv.Itoa(len(recs[0]))},
		{"reserved info", []byte{0x1c}, nil, ErrMalformed, "offset 0"},
		{"huge string", []byte{0x5a, 0x7f, 0xff, 0xff, 0xff}, nil, ErrMalformed, "larger than"},
		{"huge array", []byte{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, nil, ErrMalformed, "offset 0"},
		{"deep nesting", bytes.Repeat([]byte{0x81}, 100), nil, ErrMalformed, "nested"},
		{"break in definite array", []byte{0x82, 0x01, 0xff}, nil, ErrMalformed, "offset 0"},
		{"map ends after key", []byte{0xbf, 0x01, 0xff}, nil, ErrMalformed, "offset 0"},
		{"bad chunk", []byte{0x5f, 0x61, 'a', 0xff}, nil, ErrMalformed, "offset 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got [][]byte
			// One byte at a time finds any reliance on full reads.
			err := ReadSequence(iotest.OneByteReader(bytes.NewReader(tt.in)), func(raw []byte) error {
				got = append(got, raw)
				return nil
			})
			if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("ReadSequence error = %v, want %v", err, tt.err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.offst) {
				t.Fatalf("error %q does not say %q", err, tt.offst)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d items, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.want[i]) {
					t.Fatalf("item %d = %x, want %x", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestReadSequenceCallbackError(t *testing.T) {
	recs := newChain(t, testSigner(t, 0), 1).counters(3)
	stop := errors.New("stop")
	n := 0
	err := ReadSequence(bytes.NewReader(bytes.Join(recs, nil)), func([]byte) error {
		n++
		return stop
	})
	if err != stop || n != 1 {
		t.Fatalf("ReadSequence = %v after %d calls, want the callback's error after 1", err, n)
	}
	readErr := errors.New("disk on fire")
	err = ReadSequence(iotest.ErrReader(readErr), func([]byte) error { return nil })
	if !errors.Is(err, readErr) {
		t.Fatalf("ReadSequence on a failing reader = %v", err)
	}
	err = ReadSequence(io.MultiReader(bytes.NewReader(recs[0]), iotest.ErrReader(readErr)), func([]byte) error { return nil })
	if !errors.Is(err, readErr) {
		t.Fatalf("ReadSequence on a reader failing after one record = %v", err)
	}
}
