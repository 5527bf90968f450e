package driverstest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/driverstest"
)

func obs(kind string) drivers.Observation {
	return drivers.Observation{Kind: kind, Source: "t", Time: time.Unix(0, 0)}
}

func TestRecorderRecordsInOrderByKind(t *testing.T) {
	var r driverstest.Recorder
	for _, k := range []string{drivers.KindGNSSFix, drivers.KindLoRaRX, drivers.KindGNSSFix} {
		if err := r.Emit(context.Background(), obs(k)); err != nil {
			t.Fatal(err)
		}
	}
	if r.Len() != 3 || len(r.All()) != 3 || len(r.Kind(drivers.KindGNSSFix)) != 2 || r.All()[1].Kind != drivers.KindLoRaRX {
		t.Fatalf("recorded %+v", r.All())
	}
}

func TestRecorderFails(t *testing.T) {
	var r driverstest.Recorder
	boom := errors.New("pipeline stopped")
	r.Fail(boom)
	if err := r.Emit(context.Background(), obs("x")); !errors.Is(err, boom) {
		t.Fatalf("Emit after Fail = %v, want %v", err, boom)
	}
	r.Fail(nil)
	if err := r.Emit(context.Background(), obs("x")); err != nil || r.Len() != 1 {
		t.Fatalf("Emit after Fail(nil) = %v with %d recorded, want nil and 1", err, r.Len())
	}
}

func TestRecorderBlocksUntilUnblockOrCancel(t *testing.T) {
	var r driverstest.Recorder
	r.Block()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Emit(ctx, obs("x")) }()
	select {
	case err := <-done:
		t.Fatalf("a blocked Emit returned %v", err)
	case <-time.After(50 * time.Millisecond): // a blocked Emit must not return; a short look suffices
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || r.Len() != 0 {
		t.Fatalf("cancelled Emit = %v with %d recorded, want context.Canceled and none", err, r.Len())
	}
	go func() { done <- r.Emit(context.Background(), obs("x")) }()
	r.Unblock()
	if err := <-done; err != nil || r.Len() != 1 {
		t.Fatalf("Emit after Unblock = %v with %d recorded", err, r.Len())
	}
}

func TestRecorderAfter(t *testing.T) {
	var r driverstest.Recorder
	ctx, cancel := context.WithCancel(context.Background())
	r.After(2, cancel)
	r.Emit(ctx, obs("x"))
	if ctx.Err() != nil {
		t.Fatal("cancelled after one")
	}
	r.Emit(ctx, obs("x"))
	if ctx.Err() == nil {
		t.Fatal("not cancelled after two")
	}
}
