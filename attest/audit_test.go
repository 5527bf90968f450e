package attest

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"

	"github.com/edge-agent/edge-agent/drivers"
)

// addAll feeds records to a and returns the verdicts.
func addAll(tb testing.TB, a *Audit, raws [][]byte) []Verdict {
	tb.Helper()
	var vs []Verdict
	for _, raw := range raws {
		v, _, _ := a.Add(raw)
		vs = append(vs, v)
	}
	return vs
}

func oneChain(tb testing.TB, r Report) ChainReport {
	tb.Helper()
	if len(r.Devices) != 1 || len(r.Devices[0].Chains) != 1 {
		tb.Fatalf("report has %d devices, want 1 device with 1 chain: %+v", len(r.Devices), r)
	}
	return r.Devices[0].Chains[0]
}

func TestAuditCleanChain(t *testing.T) {
	s := testSigner(t, 0)
	b := newChain(t, s, 1)
	raws := [][]byte{b.add(KindBoot, Boot{Version: "v1", Reason: BootNewChain})}
	raws = append(raws, b.counters(9)...)
	a := NewAudit()
	for i, v := range addAll(t, a, raws) {
		if v != Accepted {
			t.Fatalf("record %d: verdict %v, want accepted", i, v)
		}
	}
	r := a.Report()
	if !r.OK() {
		t.Fatalf("clean chain not OK: %+v", r)
	}
	c := oneChain(t, r)
	want := ChainReport{Chain: b.chain, Records: 10, FirstSeq: 1, LastSeq: 10, Boots: 1}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("chain report = %+v, want %+v", c, want)
	}
	if r.Devices[0].DeviceID != s.DeviceID() {
		t.Fatalf("device = %s, want %s", r.Devices[0].DeviceID, s.DeviceID())
	}
}

func TestAuditFindings(t *testing.T) {
	s := testSigner(t, 0)

	tests := []struct {
		name     string
		partial  bool
		build    func(b *chainBuilder) [][]byte
		verdicts []Verdict
		want     func(c *ChainReport) // fills in the expected findings
		ok       bool
	}{
		{
			name: "duplicate",
			build: func(b *chainBuilder) [][]byte {
				r := b.counters(3)
				return append(r, r[1], bytes.Clone(r[1]))
			},
			verdicts: []Verdict{Accepted, Accepted, Accepted, Duplicate, Duplicate},
			want:     func(c *ChainReport) { c.Duplicates = 2 },
			ok:       true,
		},
		{
			name: "fork",
			build: func(b *chainBuilder) [][]byte {
				r := b.counters(2)
				alt := b.claims(drivers.KindCounter, drivers.Counter{N: 999})
				alt.Seq = 2
				alt.Prev = PayloadHash(mustDecode(t, r[0]).Payload)
				forked, _ := signClaims(t, b.s, alt)
				r = append(r, b.counters(1)...)
				return append(r, forked, forked)
			},
			verdicts: []Verdict{Accepted, Accepted, Accepted, Forked, Duplicate},
			want:     func(c *ChainReport) { c.Duplicates = 1 }, // Forks checked below
		},
		{
			name: "broken link",
			build: func(b *chainBuilder) [][]byte {
				r := b.counters(2)
				b.prev[0] ^= 1 // the device lost or rewrote a payload
				return append(r, b.counters(2)...)
			},
			verdicts: []Verdict{Accepted, Accepted, Accepted, Accepted},
			want:     func(c *ChainReport) { c.BrokenLinks = []uint64{3} },
		},
		{
			name: "announced gap",
			build: func(b *chainBuilder) [][]byte {
				r := b.counters(3)
				b.counters(4) // seqs 4..7 evicted before delivery
				r = append(r, b.add(KindGap, Gap{From: 4, To: 7, Reason: GapReasonQuota}))
				return append(r, b.counters(1)...)
			},
			verdicts: []Verdict{Accepted, Accepted, Accepted, Accepted, Accepted},
			want:     func(c *ChainReport) { c.AnnouncedGaps = []Range{{4, 7}} },
			ok:       true,
		},
		{
			name: "unannounced gap",
			build: func(b *chainBuilder) [][]byte {
				r := b.counters(3)
				b.counters(2) // 4..5 vanish without a word
				return append(r, b.counters(1)...)
			},
			verdicts: []Verdict{Accepted, Accepted, Accepted, Accepted},
			want:     func(c *ChainReport) { c.UnannouncedGaps = []Range{{4, 5}} },
		},
		{
			name: "gap announced in part",
			build: func(b *chainBuilder) [][]byte {
				r := b.counters(2)
				b.counters(6) // 3..8 missing, only 4..5 announced
				r = append(r, b.add(KindGap, Gap{From: 4, To: 5, Reason: GapReasonQuota}))
				return r
			},
			verdicts: []Verdict{Accepted, Accepted, Accepted},
			want: func(c *ChainReport) {
				c.AnnouncedGaps = []Range{{4, 5}}
				c.UnannouncedGaps = []Range{{3, 3}, {6, 8}}
			},
		},
		{
			name: "starts mid-way",
			build: func(b *chainBuilder) [][]byte {
				b.counters(4)
				return b.counters(2)
			},
			verdicts: []Verdict{Accepted, Accepted},
			want:     func(c *ChainReport) { c.UnannouncedGaps = []Range{{1, 4}} },
		},
		{
			name:    "starts mid-way, partial",
			partial: true,
			build: func(b *chainBuilder) [][]byte {
				b.counters(4)
				return b.counters(2)
			},
			verdicts: []Verdict{Accepted, Accepted},
			want:     func(c *ChainReport) {},
			ok:       true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newChain(t, s, 1)
			raws := tt.build(b)
			a := NewAudit(AuditOptions{Partial: tt.partial})
			if got := addAll(t, a, raws); !reflect.DeepEqual(got, tt.verdicts) {
				t.Fatalf("verdicts = %v, want %v", got, tt.verdicts)
			}
			r := a.Report()
			c := oneChain(t, r)
			want := ChainReport{Chain: b.chain, Records: c.Records, FirstSeq: c.FirstSeq, LastSeq: c.LastSeq, Forks: c.Forks}
			tt.want(&want)
			if !reflect.DeepEqual(c, want) {
				t.Fatalf("chain report = %+v\nwant %+v", c, want)
			}
			if r.OK() != tt.ok {
				t.Fatalf("OK() = %v, want %v", r.OK(), tt.ok)
			}
			forks := 0
			for _, v := range tt.verdicts {
				if v == Forked {
					forks++
				}
			}
			if len(c.Forks) != forks {
				t.Fatalf("%d forks reported, want %d", len(c.Forks), forks)
			}
			for _, f := range c.Forks {
				r1, r2 := mustDecode(t, f.First), mustDecode(t, f.Second)
				if r1.Claims.Seq != f.Seq || r2.Claims.Seq != f.Seq || bytes.Equal(r1.Payload, r2.Payload) || r1.Verify() != nil || r2.Verify() != nil {
					t.Fatalf("fork evidence at seq %d is not two valid conflicting records", f.Seq)
				}
			}
		})
	}
}

func mustDecode(tb testing.TB, raw []byte) *Record {
	tb.Helper()
	r, err := Decode(raw)
	if err != nil {
		tb.Fatalf("Decode: %v", err)
	}
	return r
}

func TestAuditBadInput(t *testing.T) {
	s := testSigner(t, 0)
	b := newChain(t, s, 1)
	raws := b.counters(3)
	bad := bytes.Clone(raws[1])
	bad[len(bad)-1] ^= 0x80 // last signature byte
	a := NewAudit()
	a.Add(raws[0])
	v, rec, err := a.Add(bad)
	if v != BadSignature || rec == nil || !errors.Is(err, ErrBadSignature) {
		t.Fatalf("flipped signature: %v, %v, %v", v, rec, err)
	}
	v, rec, err = a.Add([]byte{0xd2, 0x84, 0x00})
	if v != Malformed || rec != nil || !errors.Is(err, ErrMalformed) {
		t.Fatalf("garbage: %v, %v, %v", v, rec, err)
	}
	a.Add(raws[2])
	r := a.Report()
	if r.BadSignatures != 1 || r.Malformed != 1 || r.OK() {
		t.Fatalf("report = %+v, OK %v", r, r.OK())
	}
	// The bad record does not count as present: seq 2 is a gap.
	if c := oneChain(t, r); !reflect.DeepEqual(c.UnannouncedGaps, []Range{{2, 2}}) {
		t.Fatalf("gaps = %v, want [{2 2}]", c.UnannouncedGaps)
	}
	// The good record still arrives later.
	if v, _, _ := a.Add(raws[1]); v != Accepted {
		t.Fatalf("good seq 2 after bad one: %v", v)
	}
}

// TestAuditInterleavedAndShuffled audits two devices, each with two chains,
// one with an announced gap, fed in random order and concurrently. The
// report must not depend on the order.
func TestAuditInterleavedAndShuffled(t *testing.T) {
	var all [][]byte
	for dev := byte(0); dev < 2; dev++ {
		s := testSigner(t, dev)
		for ch := byte(0); ch < 2; ch++ {
			b := newChain(t, s, 16*ch+1)
			all = append(all, b.add(KindBoot, Boot{Version: "v1"}))
			all = append(all, b.counters(20)...)
			if ch == 1 {
				b.counters(5)
				all = append(all, b.add(KindGap, Gap{From: 22, To: 26, Reason: GapReasonQuota}))
				all = append(all, b.counters(3)...)
			}
		}
	}
	// A re-delivered batch.
	all = append(all, all[3:9]...)

	var first Report
	for round := range 4 {
		rng := rand.New(rand.NewPCG(uint64(round), 7))
		order := rng.Perm(len(all))
		a := NewAudit()
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Go(func() {
				for i := w; i < len(order); i += 2 {
					if v, _, err := a.Add(all[order[i]]); v != Accepted && v != Duplicate {
						t.Errorf("record %d: %v %v", order[i], v, err)
					}
				}
			})
		}
		wg.Wait()
		r := a.Report()
		if !r.OK() {
			t.Fatalf("round %d: not OK: %+v", round, r)
		}
		if round == 0 {
			first = r
			if len(r.Devices) != 2 || len(r.Devices[0].Chains) != 2 || r.Devices[0].DeviceID >= r.Devices[1].DeviceID {
				t.Fatalf("report shape: %+v", r)
			}
			dups := 0
			for _, d := range r.Devices {
				for _, c := range d.Chains {
					dups += c.Duplicates
				}
			}
			if dups != 6 {
				t.Fatalf("duplicates = %d, want 6", dups)
			}
			continue
		}
		if !reflect.DeepEqual(r, first) {
			t.Fatalf("round %d report differs from round 0:\n%+v\n%+v", round, r, first)
		}
	}
	var gapChain *ChainReport
	for _, d := range first.Devices {
		for i := range d.Chains {
			if d.Chains[i].AnnouncedGaps != nil {
				gapChain = &d.Chains[i]
			}
		}
	}
	if gapChain == nil || !reflect.DeepEqual(gapChain.AnnouncedGaps, []Range{{22, 26}}) || gapChain.Boots != 1 || gapChain.LastSeq != 30 {
		t.Fatalf("gap chain = %+v", gapChain)
	}
}
