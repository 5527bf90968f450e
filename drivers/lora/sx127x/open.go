package sx127x

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	_ "periph.io/x/host/v3/gpioioctl" // GPIO lines through /dev/gpiochipN, named as the kernel names them
	_ "periph.io/x/host/v3/sysfs"     // SPI through /dev/spidevB.C

	"github.com/edge-agent/edge-agent/drivers"
)

// Board names the hardware a Dev is opened on: the SPI port as periph's
// registry knows it ("/dev/spidev0.0" or "SPI0.0") and the GPIO names of
// the reset and DIO0 lines ("GPIO17", "GPIO4"; the Dragino and RAK
// single-channel HATs use GPIO0/GPIO4 and GPIO17/GPIO4 respectively: check
// the board's schematic).
type Board struct {
	SPI   string
	Reset string
	DIO0  string
}

// Open initialises the two periph host drivers a single-channel board needs
// (spidev and the GPIO character device; the Pi's pin names such as "GPIO17"
// are the kernel's line names), opens the board's SPI port and
// pins and returns a Dev on them, and the port for the caller to close after
// Run returns.
func Open(name string, b Board, o *Opts) (*Dev, spi.PortCloser, error) {
	if _, err := driverreg.Init(); err != nil {
		return nil, nil, fmt.Errorf("sx127x: open %s: periph host init: %w", name, err)
	}
	port, err := spireg.Open(b.SPI)
	if err != nil {
		return nil, nil, fmt.Errorf("sx127x: open %s: spi %q: %w (enable SPI: dtparam=spi=on in config.txt)", name, b.SPI, err)
	}
	reset, dio0 := gpioreg.ByName(b.Reset), gpioreg.ByName(b.DIO0)
	if reset == nil || dio0 == nil {
		_ = port.Close()
		return nil, nil, fmt.Errorf("sx127x: open %s: unknown gpio %q or %q: %w", name, b.Reset, b.DIO0, ErrInvalidOption)
	}
	d, err := New(name, port, reset, dio0, o)
	if err != nil {
		_ = port.Close()
		return nil, nil, err
	}
	return d, port, nil
}

// ProbeBoard reports whether the board's SPI device node exists (Skipped
// when not, which is the normal case on hotspots without an SX127x) and can
// be opened (Failed on permission errors). It does not talk to the chip, so
// it is safe while the daemon runs.
func ProbeBoard(_ context.Context, b Board) (drivers.Probe, error) {
	if !strings.Contains(b.SPI, "/") {
		return drivers.Loaded, nil // a registry name: only Open can tell
	}
	f, err := os.OpenFile(b.SPI, os.O_RDWR, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return drivers.Skipped, fmt.Errorf("sx127x: probe: %s does not exist; enable SPI (dtparam=spi=on) if a radio is fitted", b.SPI)
	case errors.Is(err, fs.ErrPermission):
		return drivers.Failed, fmt.Errorf("sx127x: probe: %s: permission denied; add the daemon's user to the spi and gpio groups", b.SPI)
	case err != nil:
		return drivers.Failed, fmt.Errorf("sx127x: probe: %s: %w", b.SPI, err)
	}
	_ = f.Close()
	return drivers.Loaded, nil
}
