package collect

import (
	"reflect"
	"testing"
)

// Gaps splits the seqs missing below the last held one by what agent.gap
// records announced (the arithmetic itself is seqrange's, tested there).
func TestGaps(t *testing.T) {
	s := Gaps([][2]uint64{{3, 5}, {9, 10}}, [][2]uint64{{7, 20}, {1, 1}})
	if s.FirstSeq != 3 || s.LastSeq != 10 ||
		!reflect.DeepEqual(s.AnnouncedGaps, [][2]uint64{{1, 1}, {7, 8}}) ||
		!reflect.DeepEqual(s.UnannouncedGaps, [][2]uint64{{2, 2}, {6, 6}}) {
		t.Fatalf("Gaps = %+v", s)
	}
	if s := Gaps(nil, [][2]uint64{{1, 2}}); s.FirstSeq != 0 || s.AnnouncedGaps != nil || s.UnannouncedGaps != nil {
		t.Fatalf("Gaps of nothing held = %+v", s)
	}
	if got := MergeRanges([][2]uint64{{5, 6}, {1, 3}, {4, 4}, {9, 9}}); !reflect.DeepEqual(got, [][2]uint64{{1, 6}, {9, 9}}) {
		t.Fatalf("MergeRanges = %v", got)
	}
}
