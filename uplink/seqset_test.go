package uplink

import "testing"

func TestSeqSet(t *testing.T) {
	var s SeqSet
	s.Add([][2]uint64{{10, 12}, {1, 3}})
	s.Add([][2]uint64{{4, 5}, {20, 20}, {11, 15}})
	if want := [][2]uint64{{1, 5}, {10, 15}, {20, 20}}; !equalRanges(s.r, want) {
		t.Fatalf("ranges %v, want %v (sorted, adjacent and overlapping merged)", s.r, want)
	}
	for seq, want := range map[uint64]bool{0: false, 1: true, 5: true, 6: false, 9: false, 10: true, 15: true, 16: false, 20: true, 21: false} {
		if s.Has(seq) != want {
			t.Errorf("Has(%d) = %v, want %v", seq, !want, want)
		}
	}
	s.Forget(11)
	if want := [][2]uint64{{12, 15}, {20, 20}}; !equalRanges(s.r, want) {
		t.Fatalf("after Forget(11): %v, want %v", s.r, want)
	}
	if s.Has(11) || !s.Has(12) {
		t.Error("Forget(11) must drop 11 and keep 12")
	}
}

func equalRanges(a, b [][2]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
