// Package store is the outbox: a bbolt file that holds every signed record
// until every configured uplink has acknowledged it. It is the only durable
// copy of a record between signing and delivery, so its rules are about not
// losing data on a Raspberry Pi whose power can be pulled at any moment.
//
// # Bucket layout (format 1)
//
//	meta     format  uint64 BE      value layout version; Open refuses newer ones
//	         chain   [16]byte       random id of this outbox's chain
//	         head    seq u64 BE ‖ hash [32]byte
//	         count   uint64 BE      records stored
//	         bytes   uint64 BE      sum of len(Record.Data) stored (the quota's unit)
//	         evicted, evictedRanges uint64 BE   lifetime eviction totals
//	         gaps    (from u64 BE ‖ to u64 BE)*  evicted ranges not yet announced
//	         recovery JSON          set when this file replaced a corrupt one
//	records  seq u64 BE → crc32c u32 BE ‖ appended Unix ns u64 BE ‖ COSE bytes
//	         (the CRC covers the key and everything after it, so a flipped bit
//	         in a record is caught at open; bbolt itself has no page checksums)
//	acks     uplink name → highest acknowledged seq u64 BE
//
// Records always form one contiguous run [oldest, head]: eviction and
// deletion both remove from the front.
//
// # Durability
//
// Append and Ack each run one bbolt read-write transaction and return only
// after its commit, which costs two fdatasync calls (data pages, then the meta
// page). Callers batch: an Append of 256 records costs the same two syncs as
// one. A record is durable once Append returned nil, and it is removed only
// when every configured uplink has acked it or when the quota evicts it, in
// which case its seq is kept in the pending gaps until an agent.gap record
// that names it has been appended. The head advances in the same transaction
// as the records, so after a crash the head and the records always agree.
// A new file and the parent directory entry are fsynced before Open returns.
//
// # A full disk
//
// Acks and deletes must work when the filesystem is full, or the outbox
// could never shrink again. Options.Reserve bytes past the file's end (and
// the file's holes) stay allocated for them; before each Append, the free
// space left (statfs, less Options.MinFree) caps the records like MaxBytes
// does, evicting the oldest with the usual gap bookkeeping. After a drain
// that leaves the file mostly free, Ack compacts it into a new file renamed
// over the old one (bbolt never shrinks a file). See space.go and compact.go.
// A file that fails its check can still be read record by record: Salvage
// yields every record whose CRC holds.
// With Options.AckDelay an Ack only moves the cursor in memory (Acked and
// Stats see it at once); the next Append's commit carries it, or a commit of
// its own once the oldest uncarried ack is AckDelay old, and Close stores
// what is left. A crash loses at most AckDelay of acks: those records are
// sent again, which at-least-once delivery allows. Such commits delete acked
// records only once 16 KiB of them wait, so that they free whole leaf pages
// instead of rewriting the first one each time. Writes reports what the
// commits wrote (bbolt's allocated pages plus a meta page each): the figure
// `status` and `doctor` turn into SD card wear.
//
// Open checks the whole file (bbolt's own Check, a CRC per record, and the
// counters in meta). A damaged file is renamed to "<path>.corrupt-<UTC time>",
// a new store with a new chain takes its place, and the event is logged at
// ERROR and kept in meta so `edge-agent doctor` can show it later. bbolt can
// panic or fault on garbage; Open turns both into a recovery, never a crash.
//
// # Concurrency
//
// A Store is safe for concurrent use. Append, Ack and Check are serialised by
// one mutex (bbolt allows one writer anyway, and Check is only safe with no
// writer running); Pending, Records and Stats use short read transactions and
// run alongside them. Head, PendingGaps, Recovery and Changed read in-memory
// copies that are replaced only after a commit. Read transactions are kept
// short (Records works in chunks) because a writer that must grow the file's
// memory map waits for every open read transaction. One process at a time may
// open the file for writing (flock); a read-only Open takes a shared lock and
// so fails with ErrLocked while the daemon runs.
package store
