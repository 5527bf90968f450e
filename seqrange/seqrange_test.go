package seqrange

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"reflect"
	"testing"
)

const maxSeq = math.MaxUint64

func rs(pairs ...uint64) []Range {
	var out []Range
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, Range{pairs[i], pairs[i+1]})
	}
	return out
}

// same fails the test when got is not want (nil and empty differ: callers
// keep omitempty fields and compare reports with reflect.DeepEqual).
func same(t *testing.T, what string, got, want []Range) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func TestUnion(t *testing.T) {
	for _, tt := range []struct {
		name string
		a, b []Range
		want []Range
	}{
		{"empty", nil, nil, nil},
		{"one side", rs(3, 4), nil, rs(3, 4)},
		{"unsorted, adjacent and overlapping joined", rs(10, 12, 1, 3), rs(4, 5, 20, 20, 11, 15), rs(1, 5, 10, 15, 20, 20)},
		{"contained", rs(1, 100), rs(5, 6), rs(1, 100)},
		{"gap of one seq kept", rs(1, 3), rs(5, 6), rs(1, 3, 5, 6)},
		{"from zero", rs(0, 0), rs(1, 2), rs(0, 2)},
		{"up to the last seq", rs(maxSeq-1, maxSeq), rs(maxSeq, maxSeq, 5, 5), rs(5, 5, maxSeq-1, maxSeq)},
		// the +1 of the adjacency test must not wrap to 0 and leave an overlap
		{"after a range ending at the last seq", rs(1, maxSeq), rs(7, 9, maxSeq, maxSeq), rs(1, maxSeq)},
		{"everything", rs(0, maxSeq), rs(0, 0), rs(0, maxSeq)},
	} {
		same(t, "Union: "+tt.name, Union(tt.a, tt.b), tt.want)
	}
}

func TestSubtract(t *testing.T) {
	for _, tt := range []struct {
		name string
		a, b []Range
		want []Range
	}{
		{"nothing to cut", rs(1, 10), nil, rs(1, 10)},
		{"cut middle", rs(1, 10), rs(4, 6), rs(1, 3, 7, 10)},
		{"cut all", rs(1, 10), rs(1, 10), nil},
		{"merged pending minus in flight", rs(1, 200), rs(1, 100), rs(101, 200)},
		{"disjoint", rs(5, 6), rs(1, 2, 8, 9), rs(5, 6)},
		{"cut edges", rs(1, 10), rs(0, 1, 10, 12), rs(2, 9)},
		{"ranges are split, not joined", rs(1, 3, 4, 6), rs(5, 5), rs(1, 3, 4, 4, 6, 6)},
		{"result sorted", rs(20, 30, 1, 10), rs(25, 25), rs(1, 10, 20, 24, 26, 30)},
		{"at zero", rs(0, 5), rs(0, 0), rs(1, 5)},
		{"at the last seq", rs(maxSeq-5, maxSeq), rs(maxSeq, maxSeq), rs(maxSeq-5, maxSeq-1)},
		{"keep the last seq", rs(maxSeq-5, maxSeq), rs(0, maxSeq-1), rs(maxSeq, maxSeq)},
		{"everything", rs(0, maxSeq), rs(0, maxSeq), nil},
	} {
		same(t, "Subtract: "+tt.name, Subtract(tt.a, tt.b), tt.want)
	}
}

// The audit splits missing seqs into announced (Intersect) and unannounced
// (Subtract) gaps.
func TestSplitGaps(t *testing.T) {
	for _, tt := range []struct {
		name               string
		missing, announced []Range
		covered, uncovered []Range
	}{
		{"none", nil, rs(1, 5), nil, nil},
		{"all announced", rs(3, 5), rs(1, 9), rs(3, 5), nil},
		{"none announced", rs(3, 5), nil, nil, rs(3, 5)},
		{"middle", rs(1, 10), rs(4, 6), rs(4, 6), rs(1, 3, 7, 10)},
		{"two", rs(1, 10, 20, 20), rs(2, 3, 9, 20), rs(2, 3, 9, 10, 20, 20), rs(1, 1, 4, 8)},
		{"announced elsewhere", rs(5, 6), rs(1, 4, 7, 8), nil, rs(5, 6)},
		{"to the last seq", rs(10, maxSeq), rs(maxSeq-1, maxSeq), rs(maxSeq-1, maxSeq), rs(10, maxSeq-2)},
	} {
		ann := Union(tt.announced, nil)
		same(t, "covered: "+tt.name, Intersect(tt.missing, ann), tt.covered)
		same(t, "uncovered: "+tt.name, Subtract(tt.missing, ann), tt.uncovered)
	}
}

func TestMissing(t *testing.T) {
	for _, tt := range []struct {
		name string
		held []Range
		from uint64
		want []Range
	}{
		{"empty", nil, 1, nil},
		{"none", rs(1, 9), 1, nil},
		{"before the first", rs(5, 9), 1, rs(1, 4)},
		{"partial chain starts at its first", rs(5, 9, 12, 12), 5, rs(10, 11)},
		{"from inside a range", rs(1, 9, 12, 12), 3, rs(10, 11)},
		{"from past the last", rs(1, 9), 20, nil},
		{"seq 0 counts from 0", rs(2, 3), 0, rs(0, 1)},
		{"held reaches the last seq", rs(1, 2, 4, maxSeq), 1, rs(3, 3)},
		{"hole just below the last seq", rs(1, maxSeq-2, maxSeq, maxSeq), 1, rs(maxSeq-1, maxSeq-1)},
	} {
		same(t, "Missing: "+tt.name, Missing(tt.held, tt.from), tt.want)
	}
}

func TestFromSeqs(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []uint64
		want []Range
	}{
		{"empty", nil, nil},
		{"one", []uint64{4}, rs(4, 4)},
		{"unsorted with repeats", []uint64{3, 1, 2, 2, 7, 8, 10}, rs(1, 3, 7, 8, 10, 10)},
		{"zero", []uint64{1, 0}, rs(0, 1)},
		{"the last seq twice", []uint64{maxSeq, maxSeq - 1, maxSeq}, rs(maxSeq-1, maxSeq)},
	} {
		same(t, "FromSeqs: "+tt.name, FromSeqs[Range](tt.in), tt.want)
	}
}

func TestPairs(t *testing.T) {
	if Pairs[Range](nil) != nil || FromPairs[Range](nil) != nil {
		t.Fatal("no ranges must be nil both ways (omitempty fields, DeepEqual in tests)")
	}
	in := rs(1, 3, 7, maxSeq)
	p := Pairs(in)
	if !reflect.DeepEqual(p, [][2]uint64{{1, 3}, {7, maxSeq}}) || !reflect.DeepEqual(FromPairs[Range](p), in) {
		t.Fatalf("Pairs(%v) = %v, back %v", in, p, FromPairs[Range](p))
	}
}

func TestSet(t *testing.T) {
	var s Set
	if s.Has(0) || s.Has(1) {
		t.Fatal("the zero Set must be empty")
	}
	s.Add(rs(10, 12, 1, 3)...)
	s.Add(rs(4, 5, 20, 20, 11, 15)...)
	if want := rs(1, 5, 10, 15, 20, 20); !reflect.DeepEqual(s.Ranges(), want) {
		t.Fatalf("ranges %v, want %v (sorted, adjacent and overlapping merged)", s.Ranges(), want)
	}
	for seq, want := range map[uint64]bool{0: false, 1: true, 5: true, 6: false, 9: false, 10: true, 15: true, 16: false, 20: true, 21: false} {
		if s.Has(seq) != want {
			t.Errorf("Has(%d) = %v, want %v", seq, !want, want)
		}
	}
	s.Forget(11)
	if want := rs(12, 15, 20, 20); !reflect.DeepEqual(s.Ranges(), want) {
		t.Fatalf("after Forget(11): %v, want %v", s.Ranges(), want)
	}
	if s.Has(11) || !s.Has(12) {
		t.Error("Forget(11) must drop 11 and keep 12")
	}
	s.Add(Range{maxSeq - 1, maxSeq})
	if !s.Has(maxSeq) || s.Has(maxSeq-2) {
		t.Errorf("the last seqs: %v", s.Ranges())
	}
	s.Forget(maxSeq)
	if len(s.Ranges()) != 0 {
		t.Errorf("Forget(MaxUint64) left %v", s.Ranges())
	}
}

// TestAgainstBitmap checks every function against a plain set of seqs on
// random ranges in a window of 64 seqs at the bottom and at the top of the
// seq space, so any slip in the arithmetic (an off-by-one, a wrap at
// MaxUint64) shows.
func TestAgainstBitmap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, base := range []uint64{0, maxSeq - 63} {
		random := func() ([]Range, uint64) {
			var out []Range
			var bits uint64
			for range rng.IntN(5) {
				a, b := rng.Uint64N(64), rng.Uint64N(64)
				a, b = min(a, b), max(a, b)
				out = append(out, Range{base + a, base + b})
				bits |= mask(a, b)
			}
			return out, bits
		}
		for range 4000 {
			a, abits := random()
			b, bbits := random()
			check(t, "Union", Union(a, b), abits|bbits, base, true)
			check(t, "Subtract", Subtract(a, b), abits&^bbits, base, false)
			ca, cb := Union(a, nil), Union(b, nil)
			check(t, "Intersect", Intersect(ca, cb), abits&bbits, base, true)
			check(t, "Subtract of canonical", Subtract(ca, cb), abits&^bbits, base, true)
			if abits != 0 {
				from := base + rng.Uint64N(64)
				hi := uint64(63 - bits.LeadingZeros64(abits))
				var want uint64
				if from-base <= hi {
					want = mask(from-base, hi) &^ abits
				}
				check(t, "Missing", Missing(ca, from), want, base, true)
			}
			var seqs []uint64
			for i := range uint64(64) {
				if abits&(1<<i) != 0 {
					seqs = append(seqs, base+i, base+i)
				}
			}
			rng.Shuffle(len(seqs), func(i, j int) { seqs[i], seqs[j] = seqs[j], seqs[i] })
			check(t, "FromSeqs", FromSeqs[Range](seqs), abits, base, true)
		}
	}
}

func mask(a, b uint64) uint64 { // bits a..b
	if b == 63 {
		return ^uint64(0) << a
	}
	return (uint64(1)<<(b+1) - 1) &^ (uint64(1)<<a - 1)
}

// check compares got with the seqs in want (bit i is seq base+i). got must
// be sorted by From, and when canonical also disjoint and not adjacent.
func check(t *testing.T, op string, got []Range, want, base uint64, canonical bool) {
	t.Helper()
	var seqs uint64
	for i, r := range got {
		if r.From > r.To || r.From < base || r.To-base > 63 {
			t.Fatalf("%s: bad range %v in %v", op, r, got)
		}
		if i > 0 && (got[i-1].From > r.From || canonical && got[i-1].To+1 >= r.From) {
			t.Fatalf("%s: %v is not sorted (and canonical: %v)", op, got, canonical)
		}
		seqs |= mask(r.From-base, r.To-base)
	}
	if seqs != want {
		t.Fatalf("%s = %v: seqs %064b, want %064b", op, got, seqs, want)
	}
}

// A package's own range type works as it is, and comes back as itself.
func TestOwnRangeType(t *testing.T) {
	type span struct{ From, To uint64 }
	got := Union([]span{{1, 2}}, []span{{3, 4}})
	if !reflect.DeepEqual(got, []span{{1, 4}}) {
		t.Fatalf("Union = %v", got)
	}
}
