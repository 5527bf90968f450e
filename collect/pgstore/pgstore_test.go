package pgstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	mrand "math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/collect"
	"github.com/edge-agent/edge-agent/collect/fleet"
	"github.com/edge-agent/edge-agent/collect/pgstore"
	"github.com/edge-agent/edge-agent/collect/pgstore/pgtest"
)

// One server for the package's tests; each test gets its own database.
var (
	srvOnce sync.Once
	srv     *pgtest.Server
	srvErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if srv != nil {
		srv.Stop()
	}
	os.Exit(code)
}

func database(tb testing.TB) string {
	tb.Helper()
	srvOnce.Do(func() { srv, srvErr = pgtest.StartServer() })
	if srvErr != nil {
		tb.Fatal(srvErr)
	}
	return srv.NewDatabase(tb)
}

func open(tb testing.TB, url string) *pgstore.Store {
	tb.Helper()
	s, err := pgstore.Open(context.Background(), url, pgstore.Opts{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func decode(tb testing.TB, raws ...[]byte) []*attest.Record {
	tb.Helper()
	out := make([]*attest.Record, len(raws))
	for i, r := range raws {
		rec, err := attest.Decode(r)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = rec
	}
	return out
}

func chainOf(tb testing.TB, d *fleet.Device, n int) [][]byte {
	tb.Helper()
	var out [][]byte
	for range n {
		raw, _, err := d.Next(time.Now(), 16)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

func count(tb testing.TB, url, table string) int {
	tb.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func verdicts(out []collect.Outcome) map[attest.Verdict]int {
	m := map[attest.Verdict]int{}
	for _, o := range out {
		m[o.Verdict]++
	}
	return m
}

func TestMigrationsApplyOnceUnderConcurrentStarts(t *testing.T) {
	url := database(t)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() {
			s, err := pgstore.Open(context.Background(), url, pgstore.Opts{})
			if err == nil {
				s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, url)
	v, err := s.SchemaVersion(context.Background())
	names, _ := pgstore.Migrations()
	if err != nil || v != len(names) || count(t, url, "schema_migrations") != len(names) {
		t.Fatalf("schema version %d (%v), %d migration rows; want %d", v, err, count(t, url, "schema_migrations"), len(names))
	}
}

// TestReplayInsertsNothing: half the stream again, in another order and
// through another collector's store: zero new rows, all duplicates.
func TestReplayInsertsNothing(t *testing.T) {
	url := database(t)
	a, b := open(t, url), open(t, url)
	var all [][]byte
	for range 10 {
		d, _ := fleet.NewDevice(rand.Reader)
		all = append(all, chainOf(t, d, 100)...)
	}
	ctx := context.Background()
	out, err := a.Commit(ctx, decode(t, all...), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if v := verdicts(out); v[attest.Accepted] != len(all) {
		t.Fatalf("first pass verdicts %v, want %d accepted", v, len(all))
	}
	recs, seqs := count(t, url, "records"), count(t, url, "seqs")
	replay := slices.Clone(all[:len(all)/2])
	mrand.Shuffle(len(replay), func(i, j int) { replay[i], replay[j] = replay[j], replay[i] })
	out, err = b.Commit(ctx, decode(t, replay...), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if v := verdicts(out); v[attest.Duplicate] != len(replay) {
		t.Fatalf("replay verdicts %v, want %d duplicates", v, len(replay))
	}
	if r, s := count(t, url, "records"), count(t, url, "seqs"); r != recs || s != seqs {
		t.Fatalf("replay added rows: records %d → %d, seqs %d → %d", recs, r, seqs, s)
	}
	sum, err := a.Summary(ctx)
	if err != nil || len(sum) != 10 {
		t.Fatalf("summary %d devices, %v", len(sum), err)
	}
	var dups uint64
	for _, d := range sum {
		dups += d.Chains[0].Duplicates
		if c := d.Chains[0]; c.Records != 100 || c.FirstSeq != 1 || c.LastSeq != 100 || len(c.UnannouncedGaps) > 0 {
			t.Fatalf("chain summary %+v", c)
		}
	}
	if dups != uint64(len(replay)) {
		t.Fatalf("duplicates counted %d, want %d", dups, len(replay))
	}
	// Export returns each record once.
	var buf bytes.Buffer
	if n, err := b.Export(ctx, &buf); err != nil || n != len(all) {
		t.Fatalf("export %d, %v; want %d", n, err, len(all))
	}
}

// TestForkEvidenceStoredOnce: an equivocating device's two payloads for one
// seq reach three collectors in every combination, concurrently: the
// evidence is stored once, and each seq once.
func TestForkEvidenceStoredOnce(t *testing.T) {
	url := database(t)
	stores := []*pgstore.Store{open(t, url), open(t, url), open(t, url)}
	d, _ := fleet.NewDevice(rand.Reader)
	recs := chainOf(t, d, 10)
	r5 := decode(t, recs[4])[0]
	c := r5.Claims
	c.Obs = map[string]any{"n": 999} // same seq and prev, another payload
	alt, _, err := d.Sign(&c)
	if err != nil {
		t.Fatal(err)
	}
	halves := [][][]byte{
		append(slices.Clone(recs[:5]), alt),          // saw the fork first
		append(slices.Clone(recs[3:]), recs[4]),      // saw the original
		append([][]byte{alt, alt, recs[4]}, recs...), // saw everything, twice
	}
	var wg sync.WaitGroup
	forked := make([]int, 3)
	for i, s := range stores {
		wg.Go(func() {
			for round := range 3 {
				batch := slices.Clone(halves[(i+round)%3])
				mrand.Shuffle(len(batch), func(a, b int) { batch[a], batch[b] = batch[b], batch[a] })
				out, err := s.Commit(context.Background(), decode(t, batch...), time.Now())
				if err != nil {
					t.Error(err)
					return
				}
				forked[i] += verdicts(out)[attest.Forked]
			}
		})
	}
	wg.Wait()
	if n := count(t, url, "forks"); n != 1 {
		t.Fatalf("fork rows %d, want 1", n)
	}
	if forked[0]+forked[1]+forked[2] != 1 {
		t.Fatalf("Forked verdicts %v, want exactly one in all", forked)
	}
	if n := count(t, url, "seqs"); n != 10 {
		t.Fatalf("seq rows %d, want 10", n)
	}
	ev, err := stores[0].Forks(context.Background())
	if err != nil || len(ev) != 1 {
		t.Fatalf("fork evidence %d, %v", len(ev), err)
	}
	pair := [][]byte{ev[0][0], ev[0][1]}
	if !(bytes.Equal(pair[0], recs[4]) && bytes.Equal(pair[1], alt) || bytes.Equal(pair[0], alt) && bytes.Equal(pair[1], recs[4])) {
		t.Fatal("fork evidence is not the two seq-5 records")
	}
}

// auditChain makes one device's chain with everything an audit looks at:
// an announced gap, an unannounced gap, a broken link and a fork.
func auditChain(tb testing.TB) [][]byte {
	tb.Helper()
	d, _ := fleet.NewDevice(rand.Reader)
	var out [][]byte
	var prev [32]byte
	sign := func(seq uint64, kind string, obs any, p [32]byte) ([]byte, [32]byte) {
		raw, h, err := d.Sign(&attest.Claims{Chain: d.Chain(), Seq: seq, Prev: p, Time: time.Now().UnixNano(), Kind: kind, Source: "t", Obs: obs})
		if err != nil {
			tb.Fatal(err)
		}
		return raw, h
	}
	for seq := uint64(1); seq <= 60; seq++ {
		switch {
		case seq >= 20 && seq <= 25: // evicted, announced below
			continue
		case seq == 30 || seq == 31: // lost, never announced
			continue
		}
		kind, obs := "test.count", any(map[string]any{"n": seq})
		if seq == 26 {
			kind, obs = attest.KindGap, attest.Gap{From: 20, To: 25, Reason: "quota"}
		}
		p := prev
		if seq == 40 {
			p = [32]byte{0xba, 0xd} // broken link
		}
		raw, h := sign(seq, kind, obs, p)
		out = append(out, raw)
		if seq == 50 { // a fork linked like the original
			alt, _ := sign(seq, "test.count", map[string]any{"n": 5000}, p)
			out = append(out, alt)
		}
		prev = h
	}
	return out
}

func reference(tb testing.TB, raws [][]byte) attest.ChainReport {
	tb.Helper()
	a := attest.NewAudit()
	for _, r := range raws {
		a.Add(r)
	}
	rep := a.Report()
	if len(rep.Devices) != 1 || len(rep.Devices[0].Chains) != 1 {
		tb.Fatalf("reference audit: %+v", rep)
	}
	return rep.Devices[0].Chains[0]
}

func sameAudit(tb testing.TB, name string, got collect.ChainSummary, want attest.ChainReport) {
	tb.Helper()
	ranges := func(rs []attest.Range) [][2]uint64 {
		var out [][2]uint64
		for _, r := range rs {
			out = append(out, [2]uint64{r.From, r.To})
		}
		return out
	}
	if got.Chain != hex.EncodeToString(want.Chain[:]) || got.Records != uint64(want.Records) ||
		got.FirstSeq != want.FirstSeq || got.LastSeq != want.LastSeq ||
		!slices.Equal(got.AnnouncedGaps, ranges(want.AnnouncedGaps)) ||
		!slices.Equal(got.UnannouncedGaps, ranges(want.UnannouncedGaps)) ||
		!slices.Equal(got.BrokenLinks, want.BrokenLinks) || got.Forks != uint64(len(want.Forks)) {
		tb.Fatalf("%s: summary %+v\nwant audit %+v", name, got, want)
	}
}

// TestAuditIndependentOfOrder: the chain audit from the store equals
// attest.Audit's, in order, reversed, and shuffled across three collectors
// committing concurrently in small batches.
func TestAuditIndependentOfOrder(t *testing.T) {
	raws := auditChain(t)
	want := reference(t, raws)
	if len(want.AnnouncedGaps) != 1 || len(want.UnannouncedGaps) != 1 || len(want.BrokenLinks) != 1 || len(want.Forks) != 1 {
		t.Fatalf("the test chain does not exercise the audit: %+v", want)
	}
	orders := map[string]func([][]byte) [][]byte{
		"in order": func(r [][]byte) [][]byte { return r },
		"reversed": func(r [][]byte) [][]byte { r = slices.Clone(r); slices.Reverse(r); return r },
		"shuffled": func(r [][]byte) [][]byte {
			r = slices.Clone(r)
			mrand.Shuffle(len(r), func(i, j int) { r[i], r[j] = r[j], r[i] })
			return r
		},
	}
	for name, reorder := range orders {
		t.Run(name, func(t *testing.T) {
			url := database(t)
			stores := []*pgstore.Store{open(t, url), open(t, url), open(t, url)}
			stream := reorder(raws)
			var wg sync.WaitGroup
			for i, s := range stores {
				wg.Go(func() {
					var mine [][]byte
					for j := i; j < len(stream); j += len(stores) {
						mine = append(mine, stream[j])
					}
					for len(mine) > 0 {
						n := min(len(mine), 1+mrand.IntN(7))
						if _, err := s.Commit(context.Background(), decode(t, mine[:n]...), time.Now()); err != nil {
							t.Error(err)
							return
						}
						mine = mine[n:]
					}
				})
			}
			wg.Wait()
			sum, err := stores[0].Summary(context.Background())
			if err != nil || len(sum) != 1 || len(sum[0].Chains) != 1 {
				t.Fatalf("summary %+v, %v", sum, err)
			}
			sameAudit(t, "postgres "+name, sum[0].Chains[0], want)

			// The embedded bbolt store gives the same answer.
			cfg := collect.DefaultConfig()
			cfg.DataDir = t.TempDir()
			bs, err := collect.OpenStore(context.Background(), &cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer bs.Close()
			for _, r := range stream {
				if _, err := bs.Commit(context.Background(), decode(t, r), time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			bsum, err := bs.Summary(context.Background())
			if err != nil || len(bsum) != 1 {
				t.Fatalf("bbolt summary %+v, %v", bsum, err)
			}
			sameAudit(t, "bbolt "+name, bsum[0].Chains[0], want)
		})
	}
}

// TestRetentionDropsOldPartitions: records older than the retention go
// with their partition; the dedupe index keeps them duplicates.
func TestRetentionDropsOldPartitions(t *testing.T) {
	url := database(t)
	now := time.Now()
	clock := now.AddDate(0, 0, -10)
	s, err := pgstore.Open(context.Background(), url, pgstore.Opts{Retention: 3 * 24 * time.Hour, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, _ := fleet.NewDevice(rand.Reader)
	old := chainOf(t, d, 5)
	if _, err := s.Commit(context.Background(), decode(t, old...), clock); err != nil {
		t.Fatal(err)
	}
	if n := count(t, url, "records_"+clock.UTC().Format("20060102")); n != 5 {
		t.Fatalf("old partition holds %d, want 5", n)
	}
	clock = now
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := count(t, url, "records"); n != 0 {
		t.Fatalf("records after retention %d, want 0", n)
	}
	out, err := s.Commit(context.Background(), decode(t, old...), now)
	if err != nil || verdicts(out)[attest.Duplicate] != 5 {
		t.Fatalf("replay of expired records: %v, %v; want 5 duplicates", verdicts(out), err)
	}
}
