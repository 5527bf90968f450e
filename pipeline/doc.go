// Package pipeline is the signing stage between the drivers and the store:
// it turns observations into signed, chained, durable records.
//
//	drivers ─Emit→ queue → sequencer (seq, prev, loc, tq, payload) → parallel signing → group commit ─Append→ store
//
// A Pipeline stamps each record with the latest GNSS position (UpdateFix)
// and the clock's quality, names evicted ranges in agent.gap records, and
// retries a failing store append while holding the batch. Emit may be called
// from any goroutine until CloseInput; Run owns the sequencer and the
// committer and returns once they have drained. Stats is safe from any
// goroutine. The daemon (package agent) builds it and reads it only through
// its exported methods.
package pipeline
