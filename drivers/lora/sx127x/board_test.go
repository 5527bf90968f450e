package sx127x

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

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

// TestBoardStatsAcrossRuns: the board's counters reach its Stats while a
// radio is open and survive the radio being closed and failing to reopen,
// which is what the daemon's status shows.
func TestBoardStatsAcrossRuns(t *testing.T) {
	ops := append(initOps(), rxOps(0x00, dataUp, 0x1C, 0x5A)...)
	ops = append(ops, r(0x12, 0x70), w(0x12, 0xFF), w(0x01, 0x80)) // a CRC error, then sleep at exit
	rg := newRig(t, ops, Opts{})
	o := DefaultOpts()
	o.Gateway = "B827EBFFFE000001"
	d, err := NewBoard("radio", Board{SPI: "/dev/spidev0.0", Reset: "GPIO17", DIO0: "GPIO4"}, &o)
	if err != nil {
		t.Fatal(err)
	}
	openErr := errors.New("spi: no such device")
	opened := 0
	d.open = func(string, Board, *Opts) (*Dev, io.Closer, error) {
		if opened++; opened > 1 {
			return nil, nil, openErr
		}
		return rg.dev, io.NopCloser(nil), nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- d.Run(ctx, func(context.Context, drivers.Observation) error { got <- struct{}{}; return nil })
	}()
	rg.waitOps(t, len(initOps()))
	rg.dio0.EdgesChan <- gpio.High
	rg.dio0.EdgesChan <- gpio.High
	<-got
	rg.waitOps(t, len(ops)-1)
	for deadline := time.Now().Add(5 * time.Second); d.Stats().RxBadCRC == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond) // the count follows the transcript's last read
	}
	if s := d.Stats(); !s.Open || s.RxOK != 1 || s.RxBadCRC != 1 || s.Gateway != o.Gateway || s.LastError != "" {
		t.Fatalf("while open: %+v", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := d.Run(context.Background(), nil); !errors.Is(err, openErr) {
		t.Fatalf("second Run = %v, want the open error", err)
	}
	if s := d.Stats(); s.Open || s.RxOK != 1 || s.RxBadCRC != 1 || s.LastError != openErr.Error() {
		t.Fatalf("after the radio closed and failed to reopen: %+v", s)
	}
}
