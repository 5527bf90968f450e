package uplink

import (
	"reflect"
	"testing"

	"github.com/edge-agent/edge-agent/seqrange"
)

// The set arithmetic is seqrange's (tested there); this holds the pairs
// receipts carry to it.
func TestSeqSet(t *testing.T) {
	var s SeqSet
	s.Add([][2]uint64{{10, 12}, {1, 3}})
	s.Add([][2]uint64{{4, 5}, {20, 20}, {11, 15}})
	if want := [][2]uint64{{1, 5}, {10, 15}, {20, 20}}; !reflect.DeepEqual(seqrange.Pairs(s.Ranges()), want) {
		t.Fatalf("ranges %v, want %v", s.Ranges(), want)
	}
	s.Forget(11)
	if s.Has(11) || !s.Has(12) || s.Has(16) || !s.Has(20) {
		t.Errorf("after Forget(11): %v", s.Ranges())
	}
}
