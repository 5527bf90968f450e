package uplink

import (
	"cmp"
	"slices"
)

// SeqSet is a set of record seqs as sorted, merged inclusive ranges: what a
// collector has receipted of one chain, for the transports that delete a
// record only on receipts (p2p, and mqtt with collectors). The zero value is
// empty and ready; it is not safe for concurrent use.
type SeqSet struct{ r [][2]uint64 }

// Add puts the inclusive ranges rs into the set.
func (s *SeqSet) Add(rs [][2]uint64) {
	all := append(slices.Clone(s.r), rs...)
	slices.SortFunc(all, func(a, b [2]uint64) int { return cmp.Compare(a[0], b[0]) })
	out := all[:0]
	for _, r := range all {
		if n := len(out); n > 0 && r[0] <= out[n-1][1]+1 {
			out[n-1][1] = max(out[n-1][1], r[1])
			continue
		}
		out = append(out, r)
	}
	s.r = out
}

// Has reports whether seq is in the set.
func (s *SeqSet) Has(seq uint64) bool {
	_, found := slices.BinarySearchFunc(s.r, seq, func(r [2]uint64, q uint64) int {
		switch {
		case r[1] < q:
			return -1
		case r[0] > q:
			return 1
		}
		return 0
	})
	return found
}

// Forget drops every seq at or below seq, so the set stays small as the
// outbox moves on.
func (s *SeqSet) Forget(seq uint64) {
	out := s.r[:0]
	for _, r := range s.r {
		if r[1] <= seq {
			continue
		}
		r[0] = max(r[0], seq+1)
		out = append(out, r)
	}
	s.r = out
}
