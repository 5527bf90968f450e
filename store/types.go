package store

// Record is one signed record as the outbox holds it.
type Record struct {
	Seq  uint64 // position in the store's chain, from 1
	Data []byte // the COSE_Sign1 bytes, exactly as signed
}

// Entry is a record the pipeline hands to Append.
type Entry struct {
	Seq  uint64   // must continue the head: head.Seq+1, +2, …
	Hash [32]byte // SHA-256 of the record's payload: the next record's prev
	Data []byte   // the COSE_Sign1 bytes
}

// Range is an inclusive range of seqs.
type Range struct {
	From, To uint64
}

// Head is where the chain stands: the next record gets Seq+1 and prev Hash.
type Head struct {
	Chain [16]byte // random id of this outbox's chain
	Seq   uint64   // last appended seq; 0 for an empty new chain
	Hash  [32]byte // payload hash of the last record; zeros for an empty chain
}
