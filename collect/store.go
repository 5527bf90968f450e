package collect

import (
	"context"
	"io"
	"time"

	"github.com/edge-agent/edge-agent/attest"
)

// Store is where a collector keeps what it accepted. Two implementations:
// the embedded bbolt file of this package (one collector process, the
// default, `make demo`), and PostgreSQL in collect/pgstore, which only the
// network-side binary edge-collector links (pgx would not fit the device
// binary's size budget). Several collectors may share one PostgreSQL store,
// so an implementation must keep dedupe and fork detection exact across
// concurrent Commits from different processes.
//
// Commit is called by one goroutine per collector; the read methods may be
// called concurrently with it.
type Store interface {
	// Commit stores recs (verified records, in arrival order) durably and
	// returns one Outcome per record, in the same order. When it returns an
	// error nothing of the batch may be assumed stored.
	Commit(ctx context.Context, recs []*attest.Record, now time.Time) ([]Outcome, error)
	// Summary is the per-device, per-chain audit of everything stored.
	Summary(ctx context.Context) ([]DeviceSummary, error)
	// Forks returns the fork evidence held: the record stored first and the
	// conflicting one, each once.
	Forks(ctx context.Context) ([][2][]byte, error)
	// Export writes every stored record (not fork evidence) to w as a CBOR
	// sequence, the format `edge-agent verify` reads.
	Export(ctx context.Context, w io.Writer) (int, error)
	Close() error
}

// Outcome is what a Store made of one record.
type Outcome struct {
	// Verdict is attest.Accepted (new), attest.Duplicate (the same payload
	// was stored before, or the same fork evidence) or attest.Forked (a new
	// conflicting payload for a stored seq; kept as evidence).
	Verdict attest.Verdict
	// First is, for Forked, the raw record stored first for that seq.
	First []byte
}

// StoreOpener opens a store named by a URL in collector.toml (store =
// "postgres://…"). The network-side binary passes pgstore's; the device
// binary has none, so such a config is refused with a pointer to
// edge-collector.
type StoreOpener func(ctx context.Context, url string) (Store, error)
