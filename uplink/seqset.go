package uplink

import "github.com/edge-agent/edge-agent/seqrange"

// SeqSet is a set of record seqs: what a collector has receipted of one
// chain, for the transports that delete a record only on receipts (p2p, and
// mqtt with collectors). It is a seqrange.Set fed with the [from, to] pairs
// receipts carry. The zero value is empty and ready; it is not safe for
// concurrent use.
type SeqSet struct{ seqrange.Set }

// Add puts the inclusive ranges rs into the set.
func (s *SeqSet) Add(rs [][2]uint64) { s.Set.Add(seqrange.FromPairs[seqrange.Range](rs)...) }
