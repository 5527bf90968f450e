// Package file is the file uplink: it spools signed records into files in a
// directory, for USB export, the demo and tests.
//
// Each spool file is an RFC 8742 CBOR sequence: the records' COSE_Sign1
// bytes, concatenated exactly as signed. The open file is named
// records-<UTC yyyymmddThhmmss>-<first seq>.cbor.part; it is renamed to .cbor
// when sealed (by size, by age, or on shutdown), so a reader may take every
// .cbor file as complete. A record is acked to the outbox only once it is
// fsynced; after a crash, Run repairs leftover .part files (dropping a torn
// last item) and seals them, and never appends to a file from an earlier run.
//
// Delivery is at-least-once: after a crash or an I/O error a record may be in
// two files. Receivers dedupe by (kid, chain, seq).
//
// Run owns the directory: one Uplink per directory, one Run at a time. Run
// creates Dir itself (not its parents) at start, but never recreates it once
// running, so an unmounted export disk is reported instead of filling the
// disk underneath its mount point.
package file
