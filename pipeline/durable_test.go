package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Observation.Durable is the drivers' only signal that a record survives a
// crash: it must come after the commit that holds the record, never on
// Emit's nil, and never for a record that was dropped unstored.
func TestDurableCallbackFollowsTheCommit(t *testing.T) {
	for _, drain := range []bool{true, false} {
		name := map[bool]string{true: "drained", false: "cancelled"}[drain]
		t.Run(name, func(t *testing.T) {
			// An hour-long window: nothing commits until the drain.
			st := openStore(t, 0)
			p, err := New(Opts{Signer: testSigner(t), Outbox: st, CommitInterval: time.Hour, SignWorkers: 1})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				defer cancel()
				done <- p.Run(ctx)
			}()

			var mu sync.Mutex
			headAtCall := map[int]uint64{}
			obs := counters(3)
			for i := range obs {
				obs[i].Durable = func() {
					mu.Lock()
					defer mu.Unlock()
					if _, dup := headAtCall[i]; dup {
						t.Errorf("observation %d: Durable called twice", i)
					}
					headAtCall[i] = st.Head().Seq
				}
				if err := p.Emit(ctx, obs[i]); err != nil {
					t.Fatal(err)
				}
			}
			// Signed (boot record + 3), held by the hour-long window.
			deadline := time.Now().Add(10 * time.Second)
			for {
				if _, signed, _ := p.Counts(); signed == 4 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the observations were never signed")
				}
				time.Sleep(5 * time.Millisecond)
			}
			mu.Lock()
			if len(headAtCall) != 0 {
				t.Fatalf("Durable called before any commit: %v", headAtCall)
			}
			mu.Unlock()

			if drain {
				p.CloseInput()
			} else {
				cancel()
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if !drain {
				if len(headAtCall) != 0 || st.Head().Seq != 0 {
					t.Fatalf("cancelled before the commit: store head %d, Durable called for %v", st.Head().Seq, headAtCall)
				}
				return
			}
			if len(headAtCall) != 3 {
				t.Fatalf("Durable called for %d of 3 committed observations", len(headAtCall))
			}
			for i, h := range headAtCall {
				if h != 4 {
					t.Errorf("observation %d: Durable called with the store head at %d, want 4 (after its commit)", i, h)
				}
			}
		})
	}
}
