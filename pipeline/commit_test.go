package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/pipeline/pipelinetest"
	"github.com/edge-agent/edge-agent/store"
)

// countingOutbox counts commits and the records in each.
type countingOutbox struct {
	*store.Store
	mu      sync.Mutex
	commits []int
}

func (c *countingOutbox) Append(e []store.Entry, a []store.Range) ([]store.Range, error) {
	ev, err := c.Store.Append(e, a)
	if err == nil {
		c.mu.Lock()
		c.commits = append(c.commits, len(e))
		c.mu.Unlock()
	}
	return ev, err
}

func (c *countingOutbox) count() (commits, records int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.commits {
		records += n
	}
	return len(c.commits), records
}

// runCounted starts a pipeline with one signer over o.Outbox; Run's result
// arrives on done, and ctx ends with the test.
func runCounted(t *testing.T, o Opts) (*Pipeline, context.Context, <-chan error) {
	t.Helper()
	o.Signer, o.SignWorkers = testSigner(t), 1
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return p, ctx, done
}

// A commit interval holds signed records out of the store (and out of
// Counts' stored figure) until the window ends, then commits them together;
// BatchMax still cuts a commit short.
func TestCommitIntervalBatchesByTimeAndCount(t *testing.T) {
	for _, tc := range []struct {
		name        string
		interval    time.Duration
		batchMax    int
		emit        int
		wantCommits func(int) bool
	}{
		{"window holds a trickle", 400 * time.Millisecond, 256, 20, func(n int) bool { return n <= 2 }},
		{"count cuts the window", time.Hour, 8, 40, func(n int) bool { return n >= 5 }},
		{"0s commits each batch", 0, 256, 20, func(n int) bool { return n >= 5 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			box := &countingOutbox{Store: openStore(t, 0)}
			p, ctx, done := runCounted(t, Opts{Outbox: box, BatchMax: tc.batchMax, CommitInterval: tc.interval})
			for i, o := range counters(tc.emit) {
				if err := p.Emit(ctx, o); err != nil {
					t.Fatal(err)
				}
				time.Sleep(5 * time.Millisecond) // a trickle: one batch per observation
				if i == tc.emit/2 && tc.interval == 400*time.Millisecond {
					// Mid-window: signed, not yet committed, not visible.
					if _, signed, stored := p.Counts(); stored != 0 || signed == 0 || box.Head().Seq != 0 {
						t.Fatalf("mid-window: signed %d, stored %d, store head %d; want signed > 0, nothing stored", signed, stored, box.Head().Seq)
					}
				}
			}
			if tc.interval == 400*time.Millisecond {
				deadline := time.Now().Add(10 * time.Second)
				for box.Head().Seq != uint64(tc.emit)+1 {
					if time.Now().After(deadline) {
						t.Fatalf("the window never closed: store head %d", box.Head().Seq)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			p.CloseInput()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			commits, records := box.count()
			if records != tc.emit+1 || !tc.wantCommits(commits) {
				t.Fatalf("%d records in %d commits %v", records, commits, box.commits)
			}
			if _, _, stored := p.Counts(); stored != uint64(records) {
				t.Fatalf("Counts says %d stored, the store got %d", stored, records)
			}
			rep, recs := pipelinetest.AuditStore(t, box.Store)
			if !rep.OK() || len(recs) != tc.emit+1 {
				t.Fatalf("chain after the drain: %d records, %+v", len(recs), rep)
			}
		})
	}
}

// At a trickle the window stretches: a window that ends holding fewer than
// CommitMinRecords records waits for more and commits as soon as they are
// there, and CommitIntervalMax ends it whatever it holds.
func TestCommitWindowStretchesAtLowRates(t *testing.T) {
	for _, tc := range []struct {
		name       string
		minRecords int
		max        time.Duration
		emit       int // observations after agent.boot
		want       []int
	}{
		{"waits for the minimum", 5, time.Hour, 4, []int{5}},
		{"the max ends it", 1000, 400 * time.Millisecond, 1, []int{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const interval = 50 * time.Millisecond
			box := &countingOutbox{Store: openStore(t, 0)}
			// The window opens with agent.boot, signed as the pipeline starts:
			// start is taken before that, so the max is a true lower bound.
			start := time.Now()
			p, ctx, done := runCounted(t, Opts{Outbox: box, BatchMax: 256,
				CommitInterval: interval, CommitMinRecords: tc.minRecords, CommitIntervalMax: tc.max})
			obs := counters(tc.emit)
			if err := p.Emit(ctx, obs[0]); err != nil {
				t.Fatal(err)
			}
			// Several windows of commit_interval pass: nothing may be stored.
			time.Sleep(6 * interval)
			_, signed, stored := p.Counts()
			// Under load the sleep may outlast the max, which then rightly
			// ends the window: only a commit before the max is wrong.
			if signed == 0 || stored != 0 && time.Since(start) < tc.max {
				t.Fatalf("after a few windows: signed %d, stored %d; want signed, nothing stored", signed, stored)
			}
			for _, o := range obs[1:] {
				if err := p.Emit(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			want := uint64(tc.emit) + 1
			deadline := time.Now().Add(30 * time.Second)
			for box.Head().Seq != want {
				if time.Now().After(deadline) {
					t.Fatalf("the stretched window never closed: store head %d, want %d", box.Head().Seq, want)
				}
				time.Sleep(5 * time.Millisecond)
			}
			if el := time.Since(start); tc.max < time.Hour && el < tc.max {
				t.Fatalf("committed %v after the window opened, before commit_interval_max %v", el, tc.max)
			}
			p.CloseInput()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if _, records := box.count(); records != int(want) || len(box.commits) != len(tc.want) || box.commits[0] != tc.want[0] {
				t.Fatalf("commits %v, want %v", box.commits, tc.want)
			}
		})
	}
}
