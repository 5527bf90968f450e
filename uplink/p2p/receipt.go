package p2p

import (
	"fmt"
	"slices"

	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/edge-agent/edge-agent/seqrange"
)

// Receipt says a collector holds records durably (fsynced). It is signed by
// the collector's libp2p key over receiptContext ‖ body, so it stands on its
// own: it can be checked and kept without the gossip message it came in.
//
// On the wire (deterministic CBOR): [body bstr, signature bstr] where body is
//
//	{1: network tstr, 2: collector bstr (peer id), 3: device tstr,
//	 4: [[chain bstr16, [[from uint, to uint], …]], …], 5: time uint (Unix ns)}
type Receipt struct {
	Network   string
	Collector peer.ID
	Device    string // device id (peer ID string) the records belong to
	Chains    []ChainRanges
	Time      int64 // collector clock, Unix ns
}

// ChainRanges are inclusive seq ranges of one chain.
type ChainRanges struct {
	Chain  [16]byte
	Ranges [][2]uint64 // sorted, disjoint, From <= To
}

const receiptContext = "edge-agent/receipt/1\x00"

// maxReceiptSize bounds what a node decodes from the receipts topic.
const maxReceiptSize = 64 << 10

type receiptWire struct {
	_   struct{} `cbor:",toarray"`
	Bod []byte
	Sig []byte
}

type receiptBody struct {
	Network   string      `cbor:"1,keyasint"`
	Collector []byte      `cbor:"2,keyasint"`
	Device    string      `cbor:"3,keyasint"`
	Chains    []chainWire `cbor:"4,keyasint"`
	Time      uint64      `cbor:"5,keyasint"`
}

type chainWire struct {
	_      struct{} `cbor:",toarray"`
	Chain  []byte
	Ranges [][2]uint64
}

var (
	detEnc, _    = cbor.CoreDetEncOptions().EncMode()
	strictDec, _ = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   8,
		MaxArrayElements:  4096,
		MaxMapPairs:       16,
	}.DecMode()
)

// SignReceipt encodes r and signs it with key, which must be r.Collector's.
func SignReceipt(key crypto.PrivKey, r *Receipt) ([]byte, error) {
	b := receiptBody{Network: r.Network, Collector: []byte(r.Collector), Device: r.Device, Time: uint64(max(r.Time, 0))}
	for _, c := range r.Chains {
		b.Chains = append(b.Chains, chainWire{Chain: slices.Clone(c.Chain[:]), Ranges: c.Ranges})
	}
	body, err := detEnc.Marshal(&b)
	if err != nil {
		return nil, fmt.Errorf("p2p: sign receipt: %w", err)
	}
	sig, err := key.Sign(append([]byte(receiptContext), body...))
	if err != nil {
		return nil, fmt.Errorf("p2p: sign receipt: %w", err)
	}
	out, err := detEnc.Marshal(&receiptWire{Bod: body, Sig: sig})
	if err != nil {
		return nil, fmt.Errorf("p2p: sign receipt: %w", err)
	}
	return out, nil
}

// OpenReceipt decodes a receipt and verifies its signature against the key
// embedded in the collector's peer id. Errors wrap ErrBadReceipt.
func OpenReceipt(raw []byte) (*Receipt, error) {
	if len(raw) > maxReceiptSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrBadReceipt, len(raw), maxReceiptSize)
	}
	var w receiptWire
	if err := strictDec.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("%w: envelope: %w", ErrBadReceipt, err)
	}
	var b receiptBody
	if err := strictDec.Unmarshal(w.Bod, &b); err != nil {
		return nil, fmt.Errorf("%w: body: %w", ErrBadReceipt, err)
	}
	id, err := peer.IDFromBytes(b.Collector)
	if err != nil {
		return nil, fmt.Errorf("%w: collector id: %w", ErrBadReceipt, err)
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: collector %s: key not embedded in its id: %w", ErrBadReceipt, id, err)
	}
	ok, err := pub.Verify(append([]byte(receiptContext), w.Bod...), w.Sig)
	if err != nil || !ok {
		return nil, fmt.Errorf("%w: signature of collector %s does not verify", ErrBadReceipt, id)
	}
	r := &Receipt{Network: b.Network, Collector: id, Device: b.Device, Time: int64(min(b.Time, 1<<63-1))}
	for _, c := range b.Chains {
		if len(c.Chain) != 16 {
			return nil, fmt.Errorf("%w: chain id is %d bytes, want 16", ErrBadReceipt, len(c.Chain))
		}
		cr := ChainRanges{Ranges: c.Ranges}
		copy(cr.Chain[:], c.Chain)
		for _, rg := range c.Ranges {
			if rg[0] == 0 || rg[0] > rg[1] {
				return nil, fmt.Errorf("%w: range %d-%d is not a seq range", ErrBadReceipt, rg[0], rg[1])
			}
		}
		r.Chains = append(r.Chains, cr)
	}
	return r, nil
}

// SeqRanges turns seqs (any order, repeats allowed) into sorted, merged
// inclusive ranges.
func SeqRanges(seqs []uint64) [][2]uint64 {
	return seqrange.Pairs(seqrange.FromSeqs[seqrange.Range](seqs))
}
