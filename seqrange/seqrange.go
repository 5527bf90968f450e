// Package seqrange is the arithmetic of record seq ranges: inclusive
// From–To ranges of one chain's seqs, as the outbox keeps its evicted and
// damaged seqs, agent.gap records announce them, an audit reports what is
// missing and collectors receipt what they hold. It is the one home of that
// arithmetic (union, difference, intersection, holes) so that the outbox,
// the audit, the collector and the uplinks agree on it to the seq.
//
// The functions work on any struct type of the shape struct{ From, To
// uint64 } (store.Range, attest.Range, Range), so each package keeps its
// own named type and no caller converts. They take and return plain slices
// and never keep or modify their arguments; results are sorted by From.
// "Canonical" ranges are sorted, disjoint and not adjacent ({1,3},{4,5} is
// written {1,5}): what Union returns. Ranges reach up to math.MaxUint64
// without overflowing.
//
// The functions are safe for concurrent use; a Set is not.
package seqrange

import (
	"cmp"
	"math"
	"slices"
)

// Range is the inclusive range of seqs From..To (From <= To).
type Range struct{ From, To uint64 }

// Of is a range type of some package: any struct{ From, To uint64 }.
type Of interface{ ~struct{ From, To uint64 } }

func byFrom[R Of](x, y R) int { return cmp.Compare(Range(x).From, Range(y).From) }

// Union returns the seqs in a or b as canonical ranges.
func Union[R Of](a, b []R) []R {
	all := slices.Concat(a, b)
	slices.SortFunc(all, byFrom)
	var out []R
	for _, r := range all {
		// A range ending at MaxUint64 swallows everything after it.
		if n := len(out); n > 0 {
			if last, r := Range(out[n-1]), Range(r); last.To == math.MaxUint64 || r.From <= last.To+1 {
				last.To = max(last.To, r.To)
				out[n-1] = R(last)
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// Subtract returns the seqs of rs that no range of cut covers, sorted. The
// ranges of rs are split, never joined: canonical rs gives a canonical
// result. Neither argument needs to be sorted.
func Subtract[R Of](rs, cut []R) []R {
	out := slices.Clone(rs)
	for _, c := range cut {
		c := Range(c)
		var next []R
		for _, r := range out {
			r := Range(r)
			if c.To < r.From || c.From > r.To {
				next = append(next, R(r))
				continue
			}
			if c.From > r.From {
				next = append(next, R(Range{From: r.From, To: c.From - 1}))
			}
			if c.To < r.To {
				next = append(next, R(Range{From: c.To + 1, To: r.To}))
			}
		}
		out = next
	}
	slices.SortStableFunc(out, byFrom)
	return out
}

// Intersect returns the seqs in both a and b, which must be canonical, as
// canonical ranges.
func Intersect[R Of](a, b []R) []R {
	var out []R
	for i, j := 0, 0; i < len(a) && j < len(b); {
		x, y := Range(a[i]), Range(b[j])
		if from, to := max(x.From, y.From), min(x.To, y.To); from <= to {
			out = append(out, R(Range{From: from, To: to}))
		}
		if x.To < y.To {
			i++
		} else {
			j++
		}
	}
	return out
}

// Missing returns the seqs from from up to the last seq of held that held
// does not cover: the holes of a chain whose seqs start at from. held must
// be canonical.
func Missing[R Of](held []R, from uint64) []R {
	var out []R
	next := from
	for _, h := range held {
		h := Range(h)
		if h.From > next {
			out = append(out, R(Range{From: next, To: h.From - 1}))
		}
		next = max(next, h.To+1) // at MaxUint64, h is the last range
	}
	return out
}

// FromSeqs returns seqs (any order, repeats allowed) as canonical ranges.
func FromSeqs[R Of](seqs []uint64) []R {
	s := slices.Clone(seqs)
	slices.Sort(s)
	var out []R
	for _, q := range s {
		if n := len(out); n > 0 {
			if last := Range(out[n-1]); q == last.To || q == last.To+1 {
				out[n-1] = R(Range{From: last.From, To: q})
				continue
			}
		}
		out = append(out, R(Range{From: q, To: q}))
	}
	return out
}

// Pairs returns rs in the [from, to] form that CBOR receipts and the
// collector's summaries carry; nil for none.
func Pairs[R Of](rs []R) [][2]uint64 {
	if len(rs) == 0 {
		return nil
	}
	out := make([][2]uint64, len(rs))
	for i, r := range rs {
		out[i] = [2]uint64{Range(r).From, Range(r).To}
	}
	return out
}

// FromPairs is the inverse of Pairs.
func FromPairs[R Of](ps [][2]uint64) []R {
	if len(ps) == 0 {
		return nil
	}
	out := make([]R, len(ps))
	for i, p := range ps {
		out[i] = R(Range{From: p[0], To: p[1]})
	}
	return out
}

// Set is a set of seqs held as canonical ranges: what a collector has
// receipted of one chain, for the transports that delete a record only on
// receipts. The zero value is empty and ready.
type Set struct{ r []Range }

// Add puts the ranges rs into the set.
func (s *Set) Add(rs ...Range) { s.r = Union(s.r, rs) }

// Has reports whether seq is in the set.
func (s *Set) Has(seq uint64) bool {
	_, found := slices.BinarySearchFunc(s.r, seq, func(r Range, q uint64) int {
		switch {
		case r.To < q:
			return -1
		case r.From > q:
			return 1
		}
		return 0
	})
	return found
}

// Forget drops every seq at or below seq, so the set stays small as the
// outbox moves on.
func (s *Set) Forget(seq uint64) {
	out := s.r[:0]
	for _, r := range s.r {
		if r.To <= seq {
			continue
		}
		r.From = max(r.From, seq+1)
		out = append(out, r)
	}
	s.r = out
}

// Ranges returns the set's canonical ranges; the caller must not modify them.
func (s *Set) Ranges() []Range { return s.r }
