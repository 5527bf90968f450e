package attest

import (
	"bytes"
	"cmp"
	"slices"
	"sync"

	"github.com/fxamacker/cbor/v2"

	"github.com/edge-agent/edge-agent/seqrange"
)

// Verdict is what Audit.Add made of one record.
type Verdict int

const (
	// Accepted: a new, valid record.
	Accepted Verdict = iota + 1
	// Duplicate: the same payload for this device, chain and seq was seen
	// before (at-least-once delivery repeats records; this is normal).
	Duplicate
	// Forked: a different payload with the same device, chain and seq as one
	// seen before. Both are validly signed, so the device signed two
	// histories: proof of a cheating or cloned device.
	//
	// (Named Forked, not Fork, because Fork is the evidence type.)
	Forked
	// BadSignature: the record decodes but its signature does not verify.
	BadSignature
	// Malformed: the bytes are not a record of this format.
	Malformed
)

func (v Verdict) String() string {
	switch v {
	case Accepted:
		return "accepted"
	case Duplicate:
		return "duplicate"
	case Forked:
		return "fork"
	case BadSignature:
		return "bad-signature"
	case Malformed:
		return "malformed"
	}
	return "unknown"
}

// Range is an inclusive range of seqs.
type Range struct{ From, To uint64 }

// Fork is evidence of one fork: two validly signed records with the same
// device, chain and seq but different payloads.
type Fork struct {
	Seq    uint64
	First  []byte // raw COSE_Sign1 of the record seen first
	Second []byte // raw COSE_Sign1 of the conflicting record
}

// ChainReport is what the audit found in one chain of one device.
type ChainReport struct {
	Chain             [16]byte
	Records           int // distinct seqs held (a forked seq counts once)
	Duplicates        int // records dropped as duplicates
	FirstSeq, LastSeq uint64
	// AnnouncedGaps are missing seqs named by an agent.gap record of this
	// chain: dropped on purpose (quota eviction), not tampering.
	AnnouncedGaps []Range
	// UnannouncedGaps are missing seqs no agent.gap names, including
	// 1..FirstSeq-1 unless the audit is Partial.
	UnannouncedGaps []Range
	// BrokenLinks are seqs whose prev is not the payload hash of seq-1 (both
	// present). (Seq 1 must have a zero prev; Decode rejects it otherwise.)
	BrokenLinks []uint64
	Forks       []Fork
	Boots       int // agent.boot records
}

// DeviceReport groups the chains of one device.
type DeviceReport struct {
	DeviceID string
	Chains   []ChainReport // sorted by chain id bytes
}

// Report is the result of an audit; its slices are sorted, so two audits of
// the same records in any order give equal reports.
type Report struct {
	Devices       []DeviceReport // sorted by device id
	BadSignatures int
	Malformed     int
}

// OK reports whether nothing is wrong: no bad signatures, no malformed
// records, no forks, no broken links and no unannounced gaps. Duplicates and
// announced gaps are normal.
func (r Report) OK() bool {
	if r.BadSignatures > 0 || r.Malformed > 0 {
		return false
	}
	for _, d := range r.Devices {
		for _, c := range d.Chains {
			if len(c.Forks) > 0 || len(c.BrokenLinks) > 0 || len(c.UnannouncedGaps) > 0 {
				return false
			}
		}
	}
	return true
}

// AuditOptions tune an Audit.
type AuditOptions struct {
	// Partial accepts chains that start mid-way: seqs below the lowest seen
	// were delivered (and audited) earlier, so they are not reported as
	// unannounced gaps. A collector auditing one export of many sets it.
	Partial bool
}

// Audit follows chains across any number of records, in any order, from any
// number of devices. It keeps every accepted record (as evidence for forks),
// so its memory grows with the input: it is meant for `verify` and for
// bounded batches, not as a collector's long-term state.
type Audit struct {
	opts AuditOptions

	mu        sync.Mutex
	devices   map[string]map[[16]byte]*chainState
	bad       int
	malformed int
}

type chainState struct {
	seqs  map[uint64]*seqState
	dups  int
	gaps  []Range // announced by agent.gap records (first-seen variants only)
	boots int
}

type variant struct {
	hash [32]byte // payload hash
	prev [32]byte
	raw  []byte
}

type seqState struct {
	first variant
	alts  []variant // conflicting payloads: the fork evidence
}

// NewAudit returns an empty audit. It takes zero or one AuditOptions.
func NewAudit(opts ...AuditOptions) *Audit {
	a := &Audit{devices: make(map[string]map[[16]byte]*chainState)}
	if len(opts) > 0 {
		a.opts = opts[len(opts)-1]
	}
	return a
}

// Add decodes and verifies raw and remembers it. The error says why a record
// is Malformed or BadSignature; it is nil for the other verdicts, which are
// findings about the chain rather than failures to read the record. The
// record is returned for every verdict but Malformed. Add copies what it
// keeps, so the caller may reuse raw.
func (a *Audit) Add(raw []byte) (Verdict, *Record, error) {
	rec, err := Decode(raw)
	if err != nil {
		a.mu.Lock()
		a.malformed++
		a.mu.Unlock()
		return Malformed, nil, err
	}
	if err := rec.Verify(); err != nil {
		a.mu.Lock()
		a.bad++
		a.mu.Unlock()
		return BadSignature, rec, err
	}
	v := variant{hash: PayloadHash(rec.Payload), prev: rec.Claims.Prev}

	a.mu.Lock()
	defer a.mu.Unlock()
	chains := a.devices[rec.DeviceID]
	if chains == nil {
		chains = make(map[[16]byte]*chainState)
		a.devices[rec.DeviceID] = chains
	}
	cs := chains[rec.Claims.Chain]
	if cs == nil {
		cs = &chainState{seqs: make(map[uint64]*seqState)}
		chains[rec.Claims.Chain] = cs
	}
	st := cs.seqs[rec.Claims.Seq]
	if st == nil {
		v.raw = bytes.Clone(raw)
		cs.seqs[rec.Claims.Seq] = &seqState{first: v}
		switch rec.Claims.Kind {
		case KindGap:
			var g Gap
			// Decode has checked the gap obs; this cannot fail.
			if strictDec.Unmarshal(rec.Claims.Obs.(cbor.RawMessage), &g) == nil {
				cs.gaps = append(cs.gaps, Range{g.From, g.To})
			}
		case KindBoot:
			cs.boots++
		}
		return Accepted, rec, nil
	}
	if st.first.hash == v.hash {
		cs.dups++
		return Duplicate, rec, nil
	}
	for _, alt := range st.alts {
		if alt.hash == v.hash {
			cs.dups++
			return Duplicate, rec, nil
		}
	}
	v.raw = bytes.Clone(raw)
	st.alts = append(st.alts, v)
	return Forked, rec, nil
}

// Report summarises everything added so far.
func (a *Audit) Report() Report {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := Report{BadSignatures: a.bad, Malformed: a.malformed}
	for id, chains := range a.devices {
		d := DeviceReport{DeviceID: id}
		for chain, cs := range chains {
			d.Chains = append(d.Chains, a.chainReport(chain, cs))
		}
		slices.SortFunc(d.Chains, func(x, y ChainReport) int { return bytes.Compare(x.Chain[:], y.Chain[:]) })
		r.Devices = append(r.Devices, d)
	}
	slices.SortFunc(r.Devices, func(x, y DeviceReport) int { return cmp.Compare(x.DeviceID, y.DeviceID) })
	return r
}

func (a *Audit) chainReport(chain [16]byte, cs *chainState) ChainReport {
	seqs := make([]uint64, 0, len(cs.seqs))
	for s := range cs.seqs {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	cr := ChainReport{
		Chain:      chain,
		Records:    len(seqs),
		Duplicates: cs.dups,
		FirstSeq:   seqs[0],
		LastSeq:    seqs[len(seqs)-1],
		Boots:      cs.boots,
	}

	// Missing seqs, as ranges, split by what agent.gap records announced.
	from := uint64(1)
	if a.opts.Partial {
		from = cr.FirstSeq
	}
	missing := seqrange.Missing(seqrange.FromSeqs[Range](seqs), from)
	announced := seqrange.Union(cs.gaps, nil)
	cr.AnnouncedGaps = seqrange.Intersect(missing, announced)
	cr.UnannouncedGaps = seqrange.Subtract(missing, announced)

	for _, s := range seqs {
		st := cs.seqs[s]
		// Seq 1 has no predecessor; Decode already insists its prev is zero.
		broken := false
		if before, ok := cs.seqs[s-1]; ok && s > 1 {
			// With a fork on either side, a link holds if it matches any
			// variant: the fork itself is reported separately.
			for _, v := range append([]variant{st.first}, st.alts...) {
				linked := before.first.hash == v.prev
				for _, p := range before.alts {
					linked = linked || p.hash == v.prev
				}
				broken = broken || !linked
			}
		}
		if broken {
			cr.BrokenLinks = append(cr.BrokenLinks, s)
		}
		for _, alt := range st.alts {
			cr.Forks = append(cr.Forks, Fork{Seq: s, First: st.first.raw, Second: alt.raw})
		}
	}
	return cr
}
