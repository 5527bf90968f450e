package pipeline

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/pipeline/pipelinetest"
	"github.com/edge-agent/edge-agent/status"
)

// Every record carries a time quality, and it follows the evidence: an
// unsynchronised clock, then a GNSS fix that agrees with it, then a kernel
// that says NTP, then a GNSS fix far from the clock.
func TestEveryRecordCarriesTimeQuality(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	synced := false
	kernel := func() (status.Clock, error) { return status.Clock{Synced: &synced, MaxErrorSeconds: 0.05}, nil }
	st := openStore(t, 0)
	p, err := New(Opts{Signer: testSigner(t), Outbox: st, Now: clock, BatchMax: 1, KernelClock: kernel})
	if err != nil {
		t.Fatal(err)
	}
	p.clock.rtc = false // whatever this machine has
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	emit := func() {
		t.Helper()
		if err := p.Emit(context.Background(), drivers.Observation{Kind: drivers.KindCounter, Source: "s", Time: now, Data: drivers.Counter{}}); err != nil {
			t.Fatal(err)
		}
		waitStored(t, p)
		now = now.Add(2 * time.Second)
	}
	emit() // unsynchronised
	p.UpdateFix(drivers.Fix{TimeUnixNano: now.Add(80 * time.Millisecond).UnixNano(), Lat: 1, Lon: 1, Mode: drivers.Fix3D})
	emit() // gnss, offset 80 ms
	now = now.Add(gnssTimeFresh)
	synced = true
	emit() // gnss stale: ntp, offset still carried
	p.UpdateFix(drivers.Fix{TimeUnixNano: now.Add(-5 * time.Second).UnixNano(), Lat: 1, Lon: 1, Mode: drivers.Fix3D})
	emit() // gnss disagrees by 5 s: not "gnss"
	p.CloseInput()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, recs := pipelinetest.AuditStore(t, st)
	want := []struct {
		src string
		off time.Duration // 0: none
	}{
		{attest.TimeUnsync, 0}, // boot
		{attest.TimeUnsync, 0},
		{attest.TimeGNSS, 80 * time.Millisecond},
		{attest.TimeNTP, 80 * time.Millisecond},
		{attest.TimeNTP, -5 * time.Second},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, r := range recs {
		tq := r.Claims.TQ
		if tq == nil {
			t.Errorf("record %d (%s) has no time quality", i, r.Claims.Kind)
			continue
		}
		var off time.Duration
		if tq.OffsetNS != nil {
			off = time.Duration(*tq.OffsetNS)
		}
		if tq.Source != want[i].src || off != want[i].off {
			t.Errorf("record %d: tq %s offset %v, want %s offset %v", i, tq.Source, off, want[i].src, want[i].off)
		}
	}
}

// One bad GNSS value must not become the location stamp: the other
// drivers' records keep encoding, without it.
func TestBadFixDoesNotPoisonTheStamp(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	st := openStore(t, 0)
	p, err := New(Opts{Signer: testSigner(t), Outbox: st, Now: clock, BatchMax: 1})
	if err != nil {
		t.Fatal(err)
	}
	good := drivers.Fix{TimeUnixNano: now.UnixNano(), Lat: 52.5, Lon: 13.4, Mode: drivers.Fix3D, HDOP: drivers.F64(0.9)}
	p.UpdateFix(good)
	p.UpdateFix(drivers.Fix{TimeUnixNano: now.UnixNano(), Lat: 52.6, Lon: 13.4, Mode: drivers.Fix3D, HDOP: drivers.F64(math.NaN())})
	p.UpdateFix(drivers.Fix{TimeUnixNano: now.UnixNano(), Lat: 52.7, Lon: 13.4, Mode: drivers.Fix3D, AltMSL: drivers.F64(math.Inf(1))})
	var obs []drivers.Observation
	for i := 0; i < 5; i++ {
		obs = append(obs, drivers.Observation{Kind: drivers.KindCounter, Source: "s", Time: now, Data: drivers.Counter{N: uint64(i)}})
	}
	runPipeline(t, p, obs)
	_, recs := pipelinetest.AuditStore(t, st)
	if len(recs) != 6 {
		t.Fatalf("%d records, want boot + 5: a bad fix made records fail to encode", len(recs))
	}
	for _, r := range recs[1:] {
		if r.Claims.Loc == nil || r.Claims.Loc.Lat != 52.5 {
			t.Errorf("record %d: loc %+v, want the last good fix", r.Claims.Seq, r.Claims.Loc)
		}
	}
	if p.loc.refused != 2 {
		t.Errorf("refused %d fixes, want 2", p.loc.refused)
	}
}
