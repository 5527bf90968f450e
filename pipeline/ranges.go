package pipeline

import (
	"sort"

	"github.com/edge-agent/edge-agent/store"
)

// subtractRanges returns the seqs in a that are in none of b, as sorted,
// non-overlapping ranges. The pipeline uses it to announce each evicted range
// exactly once even while an earlier announcement is still being committed.
func subtractRanges(a, b []store.Range) []store.Range {
	out := append([]store.Range(nil), a...)
	for _, cut := range b {
		var next []store.Range
		for _, r := range out {
			if cut.To < r.From || cut.From > r.To {
				next = append(next, r)
				continue
			}
			if cut.From > r.From {
				next = append(next, store.Range{From: r.From, To: cut.From - 1})
			}
			if cut.To < r.To {
				next = append(next, store.Range{From: cut.To + 1, To: r.To})
			}
		}
		out = next
	}
	sort.Slice(out, func(i, j int) bool { return out[i].From < out[j].From })
	return out
}
