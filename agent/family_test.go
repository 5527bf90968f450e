package agent

import (
	"context"
	"testing"

	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/status"
)

// oddDriver belongs to no family.
type oddDriver struct{}

func (oddDriver) Name() string                                  { return "odd" }
func (oddDriver) Run(ctx context.Context, _ drivers.Emit) error { <-ctx.Done(); return nil }

// TestUnknownFamilyIsVisible: a driver no family claims shows as "unknown",
// never as a real family such as "sim".
func TestUnknownFamilyIsVisible(t *testing.T) {
	var ds status.Driver
	familyStatus(oddDriver{}, &ds, driverView{counts: newDriverCounts()})
	if ds.Family != familyUnknown {
		t.Fatalf("family %q for a driver of no family, want %q", ds.Family, familyUnknown)
	}
	names := map[string]bool{}
	for _, f := range families {
		if f.name == "" || f.name == familyUnknown || f.status == nil {
			t.Errorf("family %+v: every family has a status name and a status reader", f)
		}
		names[f.name] = true
	}
	for _, want := range []string{"sim", "gnss", "env", "camera", "lora", "obd", "energy"} {
		if !names[want] {
			t.Errorf("no %s family", want)
		}
	}
}
