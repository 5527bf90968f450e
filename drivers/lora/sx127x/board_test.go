package sx127x

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/edge-agent/edge-agent/drivers"
)

// TestBoardWithoutRadio: a configured board that is not fitted builds, probes
// as Skipped, and fails in Run with the advice to enable SPI, instead of
// stopping the daemon at start-up.
func TestBoardWithoutRadio(t *testing.T) {
	b := Board{SPI: filepath.Join(t.TempDir(), "spidev0.0"), Reset: "GPIO17", DIO0: "GPIO4"}
	o := DefaultOpts()
	o.Gateway = "B827EBFFFE000001"
	d, err := NewBoard("radio", b, &o)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := d.Probe(context.Background()); p != drivers.Skipped || err == nil {
		t.Fatalf("probe = %v, %v; want skipped with a reason", p, err)
	}
	if err := d.Run(context.Background(), nil); err == nil {
		t.Fatal("Run on a missing board must fail")
	}
	if _, err := NewBoard("radio", Board{}, &o); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("empty board: %v", err)
	}
	bad := o
	bad.SF = 13
	if _, err := NewBoard("radio", b, &bad); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("SF 13: %v", err)
	}
}
