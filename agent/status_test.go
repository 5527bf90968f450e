package agent

import (
	"context"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/status"
)

// TestStatusDocument: the daemon's own status document, as status, doctor
// and the metrics read it, reflects what it is doing.
func TestStatusDocument(t *testing.T) {
	dir := t.TempDir()
	cfg := configIn(dir)
	cfg.Drivers.Sim = []config.Sim{{Name: "load", Kind: "counter", Interval: config.D(time.Millisecond), Count: 50}}
	cfg.Uplinks.File.Enabled = true
	a, err := New(Options{Config: &cfg, CreateKey: true, Version: "test", Commit: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// Through the real socket, as `edge-agent status` reads it.
	client := &status.Client{Socket: cfg.Status.Socket, Timeout: 5 * time.Second}
	var doc *status.Doc
	condtest.WaitFor(t, 20*time.Second, "status to show 51 records delivered and the driver finished", func() bool {
		doc, err = client.Fetch(ctx)
		return err == nil && len(doc.Uplinks) == 1 && doc.Uplinks[0].AckedSeq == 51 && len(doc.Drivers) == 1 && doc.Drivers[0].State == status.StateFinished
	})
	if doc.Schema != status.SchemaVersion || doc.Identity.DeviceID != a.Signer().DeviceID() || doc.Identity.Commit != "abc" {
		t.Fatalf("identity %+v", doc.Identity)
	}
	if d := doc.Drivers[0]; d.Name != "load" || d.Family != "sim" || d.Observations["sim.counter"] != 50 || d.LastObservation.IsZero() {
		t.Fatalf("driver %+v", d)
	}
	if u := doc.Uplinks[0]; u.Name != "file" || u.Server != cfg.SpoolDir() || u.Backlog != 0 || u.Delivered != 51 || !u.Connected {
		t.Fatalf("uplink %+v", u)
	}
	if p := doc.Pipeline; p.Observed != 50 || p.Stored != 51 || p.AppendErrors != 0 {
		t.Fatalf("pipeline %+v", p)
	}
	// Acked records are deleted a few pages' worth at a time: these 51
	// (11 KB) may all still be there, delivered.
	if doc.Store.HeadSeq != 51 || doc.Store.Records > 51 || doc.Disk.Path != dir {
		t.Fatalf("store %+v, disk %+v", doc.Store, doc.Disk)
	}
	if s := doc.Store; s.Commits == 0 || s.WrittenBytes < 2*4096*s.Commits || s.WriteRate <= 0 {
		t.Fatalf("store write accounting: %d commits, %d bytes, %.0f B/s", s.Commits, s.WrittenBytes, s.WriteRate)
	}
}
