package store

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Options configures Open. The zero value is a usable writer with no quota.
type Options struct {
	// MaxBytes is the quota on stored record bytes (the sum of len(Data));
	// 0 means none. An Append that would exceed it evicts the oldest records,
	// acked or not, and adds their seqs to the pending gaps. The bbolt file
	// itself is capped at 2×MaxBytes+32 MiB so it can never fill the card.
	MaxBytes int64
	// Uplinks are the configured uplinks. A record is deleted once every one
	// of them has acked it; with none, records stay until evicted.
	Uplinks []string
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// Rand is the source of new chain ids; nil means crypto/rand.
	Rand io.Reader
	// Now is the clock for append and recovery times; nil means time.Now.
	Now func() time.Time
	// ReadOnly opens for inspection (the CLI): a shared lock, no writes, no
	// recovery — a corrupt file is an ErrCorrupt error instead.
	ReadOnly bool
	// LockTimeout is how long Open waits for the file lock before returning
	// ErrLocked; 0 means 1s.
	LockTimeout time.Duration
	// Reserve is how many bytes beyond the end of the file are kept
	// allocated (fallocate) so that acks and deletes can commit on a full
	// filesystem; 0 means none. See space.go.
	Reserve int64
	// MinFree is the free space an Append leaves on the filesystem: when a
	// batch would take more, the oldest records are evicted as for MaxBytes.
	MinFree int64
	// EvictHeadroom is how many bytes beyond the overflow an eviction frees.
	// With 0 a full outbox evicts a few records on every append; the daemon
	// frees max_bytes/16 at a time so that one agent.gap record covers many
	// batches.
	EvictHeadroom int64
	// AckDelay, when more than 0, keeps acks in memory for up to this long:
	// the next Append's commit carries them (and deletes what they allow),
	// or a commit of their own when no Append comes. A crash loses at most
	// this much acknowledgement, so those records are sent again (receivers
	// dedupe); it never loses a record. 0 commits each Ack at once.
	AckDelay time.Duration
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = time.Second
	}
	o.Uplinks = slices.Clone(o.Uplinks)
	return o
}

// Recovery describes the replacement of a corrupt outbox file.
type Recovery struct {
	At       time.Time `json:"at"`        // when the file was moved aside (UTC)
	MovedTo  string    `json:"moved_to"`  // where the damaged file is now
	Reason   string    `json:"reason"`    // what was wrong with it
	OldChain [16]byte  `json:"old_chain"` // the damaged file's chain id; zeros when it could not be read
}

// Stats is a snapshot of the outbox for `queue stats` and `doctor`.
type Stats struct {
	Records        int64     // records stored
	Bytes          int64     // sum of their Data lengths (the quota's unit)
	MaxBytes       int64     // the quota; 0 = none
	FileBytes      int64     // size of the bbolt file on disk
	HeadSeq        uint64    // last appended seq
	Chain          [16]byte  // this outbox's chain id
	OldestSeq      uint64    // first stored seq; 0 when empty
	OldestAppended time.Time // when the oldest stored record was appended; zero when empty
	Evicted        uint64    // records evicted by the quota, over the file's life
	EvictedRanges  uint64    // eviction ranges produced, over the file's life
	PendingGaps    []Range   // evicted ranges not yet announced
	Uplinks        []UplinkStats
	LastCheck      CheckResult
	Recovery       *Recovery // non-nil when this file replaced a corrupt one
	Writes         Writes    // what this process's commits wrote; zero when read-only
}

// UplinkStats is one uplink's position in the outbox.
type UplinkStats struct {
	Name       string
	Configured bool   // false for an ack cursor left by an uplink no longer configured
	Acked      uint64 // highest acknowledged seq
	Backlog    int64  // stored records after Acked
}

// CheckResult is the outcome of the last consistency check.
type CheckResult struct {
	At  time.Time
	Err string // empty when the check passed
}

// state is the part of meta that every write reads and replaces.
type state struct {
	head          Head
	count, bytes  uint64
	evicted       uint64
	evictedRanges uint64
	gaps          []Range
}

// Store is an open outbox. See the package comment for its rules.
type Store struct {
	mapped mappedReads // see mapped.go
	path   string
	opts   Options
	log    *slog.Logger
	db     *bolt.DB

	// writeMu serialises write transactions and Check, and the replacement
	// of st and acks after each commit.
	writeMu sync.Mutex

	mu        sync.Mutex // guards everything below
	closed    bool
	st        state
	acks      map[string]uint64
	changed   chan struct{}
	lastCheck CheckResult
	recovery  *Recovery
	evicting  bool // the last Append evicted; quiets the warning at steady state

	space       space     // full-disk state, guarded by writeMu (space.go)
	lastCompact time.Time // guarded by writeMu (compact.go)
	// dbMu is held for reading by read transactions and for writing by
	// compact while it swaps db for the compacted file.
	dbMu sync.RWMutex
	// Deferred acks and write accounting (commit.go). ackGen counts acks
	// taken in memory, ackFlushed the last one a commit carried.
	ackGen, ackFlushed    uint64
	ackSince              time.Time // when the oldest ack no commit carried yet was taken
	ackTimer              *time.Timer
	commits, writtenBytes uint64
	writes                writeMeter
}

// Path returns the outbox file's path.
func (s *Store) Path() string { return s.path }

// Head returns where the chain stands after the last successful Append.
func (s *Store) Head() Head {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.head
}

// PendingGaps returns the evicted ranges not yet announced by an agent.gap
// record, oldest first.
func (s *Store) PendingGaps() []Range {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.st.gaps)
}

// Recovery returns what happened to the corrupt file this store replaced,
// at this Open or an earlier one, or nil.
func (s *Store) Recovery() *Recovery {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recovery == nil {
		return nil
	}
	r := *s.recovery
	return &r
}

// Close releases the file. It waits for a running Append or Ack to finish;
// later calls return ErrClosed, and channels from Changed are closed so
// waiting uplinks wake up and see it.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.changed)
	s.mu.Unlock()

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	ackErr := s.closeAcks()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return ackErr
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// view runs a read transaction, reporting a concurrent Close as ErrClosed.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	if s.isClosed() {
		return ErrClosed
	}
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	err := s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}
