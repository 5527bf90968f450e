// Package pgstore is the collector's PostgreSQL store: the one several
// collectors share, that `edge-collector status` and `export` read while
// they run, and that operators query with their own tools. Only the
// network-side binary edge-collector links it, as it alone links the
// collector (the device binary's size budget).
//
// Schema: migrations/*.sql, applied in order at Open under an advisory lock,
// each in its own transaction, recorded in schema_migrations. Records are
// keyed by (device key, chain, seq) in the seqs table, whose primary key
// makes dedupe and fork detection exact however many collectors insert at
// once: an INSERT … ON CONFLICT DO NOTHING on a key another collector is
// inserting waits for that transaction. Each batch is COPYed into a
// temporary stage table and moved with set-based statements in one
// transaction; its outcome is known only after COMMIT, and only then does
// the collector acknowledge and receipt.
//
// Concurrency: a Store is safe for concurrent use; it holds a pgx pool.
package pgstore

import (
	"bytes"
	"context"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/collect"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Opts tune a Store.
type Opts struct {
	// Retention drops daily record partitions whose whole day is older
	// than this; 0 keeps everything.
	Retention time.Duration
	MaxConns  int // pool size; 0 = 4
	Logger    *slog.Logger
	Now       func() time.Time
}

// Store is a collect.Store on PostgreSQL. Create it with Open.
type Store struct {
	pool *pgxpool.Pool
	o    Opts
	log  *slog.Logger
	stop context.CancelFunc
	done chan struct{}
}

var _ collect.Store = (*Store)(nil)

// migrationLock is the advisory lock key held while migrating and while
// creating or dropping partitions ("edgecoll").
const migrationLock = 0x65646765636f6c6c

const stageDDL = `CREATE TEMP TABLE IF NOT EXISTS stage (
	idx int, kid bytea, chain bytea, seq bigint, hash bytea, prev bytea,
	gap_from bigint, gap_to bigint, device text, kind text, signed_at timestamptz, raw bytea
) ON COMMIT DELETE ROWS`

// Open connects, applies the migrations this build has that the database
// lacks, makes the partitions for today and the next days, and starts the
// hourly partition and retention maintenance.
func Open(ctx context.Context, url string, o Opts) (*Store, error) {
	if o.MaxConns <= 0 {
		o.MaxConns = 4
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgstore: store URL: %w", err)
	}
	pc.MaxConns = int32(o.MaxConns)
	pc.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, stageDDL)
		return err
	}
	// The stage table exists per connection; it must not be used before
	// the schema is (AfterConnect runs before migrations on a new DB, which
	// is fine: the stage references nothing).
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("pgstore: connect: %w", err)
	}
	s := &Store{pool: pool, o: o, log: o.Logger.With("component", "collect/pgstore"), done: make(chan struct{})}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := s.maintain(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	mctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go s.maintenanceLoop(mctx)
	return s, nil
}

// Close stops maintenance and closes the pool.
func (s *Store) Close() error {
	s.stop()
	<-s.done
	s.pool.Close()
	return nil
}

// Migrations lists the versions this build carries, in order.
func Migrations() ([]string, error) {
	ents, err := migrations.ReadDir("migrations")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out, nil
}

func (s *Store) migrate(ctx context.Context) error {
	names, err := Migrations()
	if err != nil {
		return fmt.Errorf("pgstore: migrations: %w", err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: connect: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("pgstore: migration lock: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(migrationLock))
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("pgstore: schema_migrations: %w", err)
	}
	var have int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("pgstore: read schema version: %w", err)
	}
	if have > len(names) {
		return fmt.Errorf("pgstore: the database schema is version %d, this build knows %d: upgrade edge-collector", have, len(names))
	}
	for i, name := range names {
		v := i + 1
		if v <= have {
			continue
		}
		if n, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0]); err != nil || n != v {
			return fmt.Errorf("pgstore: migration %s is out of sequence (want %04d_…)", name, v)
		}
		sql, err := migrations.ReadFile("migrations/" + name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, v, name)
			return err
		})
		if err != nil {
			return fmt.Errorf("pgstore: apply migration %s: %w", name, err)
		}
		s.log.Info("schema migrated", "version", v, "name", name)
	}
	return nil
}

// SchemaVersion is the highest migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// partitionsAhead is how many days of partitions exist beyond today.
const partitionsAhead = 2

func partitionName(day time.Time) string { return "records_" + day.Format("20060102") }

// maintain creates the daily partitions for today and partitionsAhead days
// on, and drops those wholly older than the retention.
func (s *Store) maintain(ctx context.Context) error {
	today := s.o.Now().UTC().Truncate(24 * time.Hour)
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return err
		}
		for d := 0; d <= partitionsAhead; d++ {
			day := today.AddDate(0, 0, d)
			q := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF records FOR VALUES FROM ('%s') TO ('%s')`,
				partitionName(day), day.Format(time.RFC3339), day.AddDate(0, 0, 1).Format(time.RFC3339))
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("pgstore: create partition %s: %w", partitionName(day), err)
			}
		}
		if s.o.Retention <= 0 {
			return nil
		}
		rows, err := tx.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'records' AND c.relname ~ '^records_[0-9]{8}$'`)
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		cutoff := s.o.Now().Add(-s.o.Retention)
		for _, n := range names {
			day, err := time.Parse("20060102", strings.TrimPrefix(n, "records_"))
			if err != nil || !day.AddDate(0, 0, 1).Before(cutoff) {
				continue
			}
			if _, err := tx.Exec(ctx, `DROP TABLE `+pgx.Identifier{n}.Sanitize()); err != nil {
				return fmt.Errorf("pgstore: drop partition %s: %w", n, err)
			}
			s.log.Info("retention: dropped record partition", "partition", n)
		}
		return nil
	})
}

func (s *Store) maintenanceLoop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.maintain(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("partition maintenance failed; records go to records_default until it works", "err", err)
		}
	}
}

// Maintain runs partition creation and retention now (tests, operators).
func (s *Store) Maintain(ctx context.Context) error { return s.maintain(ctx) }

type key struct {
	kid   string
	chain [16]byte
	seq   uint64
}

func keyOf(r *attest.Record) key { return key{string(r.KeyID), r.Claims.Chain, r.Claims.Seq} }

func seqInt(q uint64) int64 {
	if q > math.MaxInt64 {
		return math.MaxInt64 // no device gets there; keeps the column signed
	}
	return int64(q)
}

// Commit implements collect.Store: one transaction, retried on deadlock or
// serialization failure (concurrent collectors on overlapping chains).
func (s *Store) Commit(ctx context.Context, recs []*attest.Record, now time.Time) ([]collect.Outcome, error) {
	var out []collect.Outcome
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		out, err = s.commitOnce(ctx, recs, now)
		var pe *pgconn.PgError
		if err == nil || !errors.As(err, &pe) || (pe.Code != "40P01" && pe.Code != "40001") {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: commit %d records: %w", len(recs), err)
	}
	return out, nil
}

func (s *Store) commitOnce(ctx context.Context, recs []*attest.Record, now time.Time) ([]collect.Outcome, error) {
	out := make([]collect.Outcome, len(recs))
	hashes := make([][32]byte, len(recs))
	// Stage in key order, so concurrent collectors take row locks in the
	// same order and do not deadlock each other.
	order := make([]int, len(recs))
	for i := range order {
		order[i] = i
		hashes[i] = attest.PayloadHash(recs[i].Payload)
	}
	slices.SortFunc(order, func(a, b int) int {
		ka, kb := keyOf(recs[a]), keyOf(recs[b])
		if c := strings.Compare(ka.kid, kb.kid); c != 0 {
			return c
		}
		if c := bytes.Compare(ka.chain[:], kb.chain[:]); c != 0 {
			return c
		}
		switch {
		case ka.seq < kb.seq:
			return -1
		case ka.seq > kb.seq:
			return 1
		}
		return a - b
	})
	rows := make([][]any, 0, len(recs))
	for _, i := range order {
		r := recs[i]
		var gf, gt *int64
		if g, ok := collect.GapOf(r); ok {
			f, t := seqInt(g.From), seqInt(g.To)
			gf, gt = &f, &t
		}
		rows = append(rows, []any{int32(i), r.KeyID, r.Claims.Chain[:], seqInt(r.Claims.Seq), hashes[i][:], r.Claims.Prev[:],
			gf, gt, r.DeviceID, r.Claims.Kind, time.Unix(0, r.Claims.Time).UTC(), r.Raw})
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"stage"},
			[]string{"idx", "kid", "chain", "seq", "hash", "prev", "gap_from", "gap_to", "device", "kind", "signed_at", "raw"},
			pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("copy into stage: %w", err)
		}
		// New keys: the first staged record of each key wins it.
		ins, err := tx.Query(ctx, `INSERT INTO seqs (kid, chain, seq, hash, prev, gap_from, gap_to)
			SELECT DISTINCT ON (kid, chain, seq) kid, chain, seq, hash, prev, gap_from, gap_to
			FROM stage ORDER BY kid, chain, seq, idx
			ON CONFLICT DO NOTHING RETURNING kid, chain, seq`)
		if err != nil {
			return fmt.Errorf("insert seqs: %w", err)
		}
		fresh := map[key]bool{}
		var kid, chain []byte
		var seq int64
		_, err = pgx.ForEachRow(ins, []any{&kid, &chain, &seq}, func() error {
			var k key
			k.kid, k.seq = string(kid), uint64(seq)
			copy(k.chain[:], chain)
			fresh[k] = true
			return nil
		})
		if err != nil {
			return fmt.Errorf("insert seqs: %w", err)
		}
		same := make([]bool, len(recs))
		if len(fresh) == len(recs) {
			// Every staged key was new and inserted from its only
			// staged record: nothing to compare (the common case).
			for i := range same {
				same[i] = true
			}
		} else {
			// What is stored now for every staged key (ours or another
			// collector's, committed: ON CONFLICT waited for it). One
			// primary-key lookup per staged row: a join would let the
			// planner, who knows nothing of the temporary stage, scan
			// all of seqs on every commit.
			match, err := tx.Query(ctx, `SELECT s.idx, coalesce((SELECT q.hash FROM seqs q
				WHERE q.kid = s.kid AND q.chain = s.chain AND q.seq = s.seq) = s.hash, false) FROM stage s`)
			if err != nil {
				return fmt.Errorf("compare with stored: %w", err)
			}
			var idx int32
			var eq bool
			if _, err = pgx.ForEachRow(match, []any{&idx, &eq}, func() error {
				same[idx] = eq
				return nil
			}); err != nil {
				return fmt.Errorf("compare with stored: %w", err)
			}
		}
		var accepted, forkCand []int32
		claimed := map[key]bool{}
		for _, i := range order {
			k := keyOf(recs[i])
			switch {
			case same[i] && fresh[k] && !claimed[k]:
				claimed[k] = true
				out[i].Verdict = attest.Accepted
				accepted = append(accepted, int32(i))
			case same[i]:
				out[i].Verdict = attest.Duplicate
			default:
				out[i].Verdict = attest.Duplicate // unless the fork insert below says it is new
				forkCand = append(forkCand, int32(i))
			}
		}
		if len(accepted) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO records (kid, chain, seq, device, kind, signed_at, received_at, raw)
				SELECT kid, chain, seq, device, kind, signed_at, $2, raw FROM stage WHERE idx = ANY($1) ORDER BY kid, chain, seq`,
				accepted, now.UTC()); err != nil {
				return fmt.Errorf("insert records: %w", err)
			}
		}
		if len(forkCand) > 0 {
			if err := s.insertForks(ctx, tx, recs, hashes, forkCand, now, out); err != nil {
				return err
			}
		}
		return s.updateChains(ctx, tx, recs, out, now)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) insertForks(ctx context.Context, tx pgx.Tx, recs []*attest.Record, hashes [][32]byte, cand []int32, now time.Time, out []collect.Outcome) error {
	rows, err := tx.Query(ctx, `INSERT INTO forks (kid, chain, seq, hash, prev, device, first_raw, raw, detected_at)
		SELECT DISTINCT ON (s.kid, s.chain, s.seq, s.hash) s.kid, s.chain, s.seq, s.hash, s.prev, s.device,
			(SELECT r.raw FROM records r WHERE r.kid = s.kid AND r.chain = s.chain AND r.seq = s.seq LIMIT 1), s.raw, $2
		FROM stage s WHERE s.idx = ANY($1) ORDER BY s.kid, s.chain, s.seq, s.hash, s.idx
		ON CONFLICT DO NOTHING RETURNING kid, chain, seq, hash, first_raw`, cand, now.UTC())
	if err != nil {
		return fmt.Errorf("insert forks: %w", err)
	}
	type fk struct {
		k key
		h [32]byte
	}
	fresh := map[fk][]byte{}
	var kid, chain, hash, first []byte
	var seq int64
	if _, err := pgx.ForEachRow(rows, []any{&kid, &chain, &seq, &hash, &first}, func() error {
		var f fk
		f.k.kid, f.k.seq = string(kid), uint64(seq)
		copy(f.k.chain[:], chain)
		copy(f.h[:], hash)
		fresh[f] = bytes.Clone(first)
		return nil
	}); err != nil {
		return fmt.Errorf("insert forks: %w", err)
	}
	for _, i := range cand {
		f := fk{keyOf(recs[i]), hashes[i]}
		if first, ok := fresh[f]; ok {
			out[i] = collect.Outcome{Verdict: attest.Forked, First: first}
			delete(fresh, f)
		}
	}
	return nil
}

type chainKey struct {
	kid   string
	chain [16]byte
}

type chainDelta struct {
	device                                 string
	records, duplicates, forks, boots, sum int64
}

func (s *Store) updateChains(ctx context.Context, tx pgx.Tx, recs []*attest.Record, out []collect.Outcome, now time.Time) error {
	deltas := map[chainKey]*chainDelta{}
	for i, r := range recs {
		ck := chainKey{string(r.KeyID), r.Claims.Chain}
		d := deltas[ck]
		if d == nil {
			d = &chainDelta{device: r.DeviceID}
			deltas[ck] = d
		}
		switch out[i].Verdict {
		case attest.Accepted:
			d.records++
			d.sum += int64(len(r.Raw))
			if r.Claims.Kind == attest.KindBoot {
				d.boots++
			}
		case attest.Duplicate:
			d.duplicates++
		case attest.Forked:
			d.forks++
		}
	}
	keys := make([]chainKey, 0, len(deltas))
	for k := range deltas {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b chainKey) int {
		if c := strings.Compare(a.kid, b.kid); c != 0 {
			return c
		}
		return bytes.Compare(a.chain[:], b.chain[:])
	})
	var kids, chains [][]byte
	var devices []string
	var nrec, ndup, nfork, nboot, nbytes []int64
	for _, k := range keys {
		d := deltas[k]
		kids = append(kids, []byte(k.kid))
		chains = append(chains, bytes.Clone(k.chain[:]))
		devices = append(devices, d.device)
		nrec, ndup, nfork, nboot, nbytes = append(nrec, d.records), append(ndup, d.duplicates), append(nfork, d.forks), append(nboot, d.boots), append(nbytes, d.sum)
	}
	_, err := tx.Exec(ctx, `INSERT INTO chains (kid, chain, device, records, duplicates, forks, boots, bytes, first_seen, last_seen)
		SELECT k, c, d, r, du, f, b, by, $9, $9 FROM unnest($1::bytea[], $2::bytea[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
			AS u(k, c, d, r, du, f, b, by)
		ON CONFLICT (kid, chain) DO UPDATE SET records = chains.records + EXCLUDED.records,
			duplicates = chains.duplicates + EXCLUDED.duplicates, forks = chains.forks + EXCLUDED.forks,
			boots = chains.boots + EXCLUDED.boots, bytes = chains.bytes + EXCLUDED.bytes,
			last_seen = greatest(chains.last_seen, EXCLUDED.last_seen)`,
		kids, chains, devices, nrec, ndup, nfork, nboot, nbytes, now.UTC())
	if err != nil {
		return fmt.Errorf("update chains: %w", err)
	}
	return nil
}

// Summary implements collect.Store. It reads the seqs index (one row per
// record ever stored), so it costs a scan of it: seconds at tens of millions
// of records. Held ranges come from a gaps-and-islands query; broken links
// consider every fork variant, as attest.Audit does.
func (s *Store) Summary(ctx context.Context) ([]collect.DeviceSummary, error) {
	type chainInfo struct {
		device    string
		sum       collect.ChainSummary
		held, ann [][2]uint64
		broken    []uint64
	}
	infos := map[chainKey]*chainInfo{}
	var order []chainKey
	var kid, chain []byte
	var device string
	var records, dups, forks, boots, nbytes int64
	var lastSeen time.Time
	rows, err := s.pool.Query(ctx, `SELECT kid, chain, device, records, duplicates, forks, boots, bytes, last_seen FROM chains`)
	if err != nil {
		return nil, fmt.Errorf("pgstore: summary: %w", err)
	}
	if _, err := pgx.ForEachRow(rows, []any{&kid, &chain, &device, &records, &dups, &forks, &boots, &nbytes, &lastSeen}, func() error {
		var ck chainKey
		ck.kid = string(kid)
		copy(ck.chain[:], chain)
		infos[ck] = &chainInfo{device: device, sum: collect.ChainSummary{Records: uint64(records), Duplicates: uint64(dups),
			Forks: uint64(forks), Boots: uint64(boots), Bytes: uint64(nbytes), LastSeen: lastSeen.UTC()}}
		order = append(order, ck)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("pgstore: summary: %w", err)
	}
	each := func(q string, f func(ci *chainInfo, a, b int64)) error {
		rows, err := s.pool.Query(ctx, q)
		if err != nil {
			return err
		}
		var a, b int64
		_, err = pgx.ForEachRow(rows, []any{&kid, &chain, &a, &b}, func() error {
			var ck chainKey
			ck.kid = string(kid)
			copy(ck.chain[:], chain)
			if ci := infos[ck]; ci != nil {
				f(ci, a, b)
			}
			return nil
		})
		return err
	}
	if err := each(`SELECT kid, chain, min(seq), max(seq) FROM (
			SELECT kid, chain, seq, seq - row_number() OVER (PARTITION BY kid, chain ORDER BY seq) AS g FROM seqs) t
		GROUP BY kid, chain, g ORDER BY kid, chain, 3`, func(ci *chainInfo, a, b int64) {
		ci.held = append(ci.held, [2]uint64{uint64(a), uint64(b)})
	}); err != nil {
		return nil, fmt.Errorf("pgstore: summary: held ranges: %w", err)
	}
	if err := each(`SELECT kid, chain, gap_from, gap_to FROM seqs WHERE gap_from IS NOT NULL`, func(ci *chainInfo, a, b int64) {
		ci.ann = append(ci.ann, [2]uint64{uint64(a), uint64(b)})
	}); err != nil {
		return nil, fmt.Errorf("pgstore: summary: announced gaps: %w", err)
	}
	if err := each(`SELECT a.kid, a.chain, a.seq, 0 FROM (
			SELECT kid, chain, seq, prev FROM seqs UNION ALL SELECT kid, chain, seq, prev FROM forks) a
		JOIN seqs b ON b.kid = a.kid AND b.chain = a.chain AND b.seq = a.seq - 1
		WHERE a.seq > 1 AND a.prev <> b.hash AND NOT EXISTS (
			SELECT 1 FROM forks f WHERE f.kid = a.kid AND f.chain = a.chain AND f.seq = a.seq - 1 AND f.hash = a.prev)
		GROUP BY a.kid, a.chain, a.seq ORDER BY a.seq`, func(ci *chainInfo, a, _ int64) {
		ci.broken = append(ci.broken, uint64(a))
	}); err != nil {
		return nil, fmt.Errorf("pgstore: summary: links: %w", err)
	}
	slices.SortFunc(order, func(a, b chainKey) int {
		if c := strings.Compare(infos[a].device, infos[b].device); c != 0 {
			return c
		}
		return bytes.Compare(a.chain[:], b.chain[:])
	})
	var out []collect.DeviceSummary
	for _, ck := range order {
		ci := infos[ck]
		g := collect.Gaps(ci.held, collect.MergeRanges(ci.ann))
		sum := ci.sum
		sum.Chain = hex.EncodeToString(ck.chain[:])
		sum.FirstSeq, sum.LastSeq, sum.AnnouncedGaps, sum.UnannouncedGaps = g.FirstSeq, g.LastSeq, g.AnnouncedGaps, g.UnannouncedGaps
		sum.BrokenLinks = ci.broken
		if n := len(out); n > 0 && out[n-1].Device == ci.device {
			out[n-1].Chains = append(out[n-1].Chains, sum)
			continue
		}
		out = append(out, collect.DeviceSummary{Device: ci.device, Chains: []collect.ChainSummary{sum}})
	}
	return out, nil
}

// Forks implements collect.Store.
func (s *Store) Forks(ctx context.Context) ([][2][]byte, error) {
	rows, err := s.pool.Query(ctx, `SELECT coalesce(first_raw, ''::bytea), raw FROM forks ORDER BY kid, chain, seq, hash`)
	if err != nil {
		return nil, fmt.Errorf("pgstore: forks: %w", err)
	}
	var out [][2][]byte
	var a, b []byte
	_, err = pgx.ForEachRow(rows, []any{&a, &b}, func() error {
		out = append(out, [2][]byte{bytes.Clone(a), bytes.Clone(b)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: forks: %w", err)
	}
	return out, nil
}

// Export implements collect.Store: records still within retention, per
// device key, chain and seq, streamed.
func (s *Store) Export(ctx context.Context, w io.Writer) (int, error) {
	rows, err := s.pool.Query(ctx, `SELECT raw FROM records ORDER BY kid, chain, seq`)
	if err != nil {
		return 0, fmt.Errorf("pgstore: export: %w", err)
	}
	n := 0
	var raw []byte
	_, err = pgx.ForEachRow(rows, []any{&raw}, func() error {
		if _, err := w.Write(raw); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("pgstore: export: %w", err)
	}
	return n, nil
}

// Footprint is what the store takes on disk, for docs/benchmarks.md.
type Footprint struct {
	Records, Seqs                int64
	RecordBytes, SeqBytes, Total int64 // relation sizes with indexes and TOAST
}

// Footprint measures the tables.
func (s *Store) Footprint(ctx context.Context) (Footprint, error) {
	var f Footprint
	err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM records), (SELECT count(*) FROM seqs),
		(SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'records'),
		pg_total_relation_size('seqs'), pg_database_size(current_database())`).Scan(&f.Records, &f.Seqs, &f.RecordBytes, &f.SeqBytes, &f.Total)
	return f, err
}
