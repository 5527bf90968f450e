package collect

import (
	"testing"

	"github.com/edge-agent/edge-agent/uplink/p2p"
)

// TestSplitRanges: receipts never carry more than maxReceiptRanges ranges,
// and the parts together name exactly the seqs committed.
func TestSplitRanges(t *testing.T) {
	var seqs []uint64
	for s := uint64(1); s <= 5000; s += 2 { // 2,500 single-seq ranges, as a shared subscription leaves them
		seqs = append(seqs, s)
	}
	seqs = append(seqs, 10000, 10001, 10002)
	parts := splitRanges(devChains{{1}: seqs, {2}: {7}}, maxReceiptRanges)
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	seen := map[[16]byte]map[uint64]bool{}
	for _, p := range parts {
		n := 0
		for ch, s := range p {
			n += len(p2p.SeqRanges(s))
			if seen[ch] == nil {
				seen[ch] = map[uint64]bool{}
			}
			for _, q := range s {
				if seen[ch][q] {
					t.Fatalf("seq %d of chain %x in two parts", q, ch[0])
				}
				seen[ch][q] = true
			}
		}
		if n > maxReceiptRanges {
			t.Fatalf("a part has %d ranges, want at most %d", n, maxReceiptRanges)
		}
	}
	if len(seen[[16]byte{1}]) != len(seqs) || !seen[[16]byte{2}][7] {
		t.Fatalf("parts name %d seqs of chain 1 (want %d) and chain 2's: %v", len(seen[[16]byte{1}]), len(seqs), seen[[16]byte{2}])
	}
}
