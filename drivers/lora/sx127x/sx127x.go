// Package sx127x drives a Semtech SX1276/77/78/79 (and the pin-compatible
// RFM95/96/98 modules) over SPI as a single-channel LoRa receiver, and
// emits the same drivers.KindLoRaRX observations as the packet forwarder
// server in drivers/lora. Register numbers and formulas cite the
// SX1276/77/78/79 datasheet (rev. 7, May 2020).
//
// The radio sits in continuous receive with DIO0 mapped to RxDone; each
// rising edge on DIO0 (a periph GPIO edge, no polling) triggers one FIFO
// read. Frames with a CRC error, or sent without a CRC, are counted and not
// attested, as in drivers/lora. The concentrator timestamp (tmst) comes
// from a local microsecond clock read at the edge, wrapping at 2^32 like an
// SX1301's counter.
//
// Concurrency: call Run at most once per Dev. Run's goroutine owns the SPI
// connection; Transmit hands its frame to Run and waits, so it needs Run
// running. Stats is safe from any goroutine.
package sx127x

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"

	"github.com/edge-agent/edge-agent/drivers"
)

// Registers in LoRa mode (datasheet §6.4, table 41).
const (
	regFifo             = 0x00
	regOpMode           = 0x01
	regFrfMsb           = 0x06
	regPaConfig         = 0x09
	regLna              = 0x0C
	regFifoAddrPtr      = 0x0D
	regFifoTxBaseAddr   = 0x0E
	regFifoRxBaseAddr   = 0x0F
	regFifoRxCurrent    = 0x10
	regIrqFlags         = 0x12
	regRxNbBytes        = 0x13
	regPktSnrValue      = 0x19
	regHopChannel       = 0x1C
	regModemConfig1     = 0x1D
	regModemConfig2     = 0x1E
	regPreambleMsb      = 0x20
	regPayloadLength    = 0x22
	regModemConfig3     = 0x26
	regDetectOptimize   = 0x31
	regDetectThreshold  = 0x37
	regSyncWord         = 0x39
	regDioMapping1      = 0x40
	regVersion          = 0x42
	chipVersion         = 0x12 // RegVersion of every SX1276/77/78/79 (§6.2, table 16)
	spiWrite            = 0x80 // wnr bit of the address byte (§4.3)
	modeLongRange       = 0x80 // RegOpMode bit 7, writable only in sleep (§4.1.2)
	modeLowFreq         = 0x08 // RegOpMode bit 3: LF register bank below 525 MHz
	modeSleep           = 0x00
	modeStandby         = 0x01
	modeTx              = 0x03
	modeRxContinuous    = 0x05
	irqRxDone           = 0x40 // RegIrqFlags (§6.4, table 41)
	irqPayloadCrcError  = 0x20
	irqTxDone           = 0x08
	hopCrcOnPayload     = 0x40 // RegHopChannel bit 6: the received header announced a CRC
	dio0RxDone          = 0x00 // RegDioMapping1 bits 7-6 (§4.1.6.2, table 18)
	dio0TxDone          = 0x40
	fifoTxBase          = 0x80
	fifoRxBase          = 0x00
	fxosc               = 32_000_000 // crystal, Hz (§2.5.1)
	hfPortMinHz         = 525_000_000
	rssiOffsetHF        = -157 // §5.5.5
	rssiOffsetLF        = -164
	maxPayload          = 255
	defaultPollInterval = 100 * time.Millisecond
)

// bandwidths maps RegModemConfig1 Bw codes to Hz (§6.4, table 41).
var bandwidths = [...]uint32{7_800, 10_400, 15_600, 20_800, 31_250, 41_700, 62_500, 125_000, 250_000, 500_000}

// Opts configures a Dev. Zero values mean the defaults of DefaultOpts.
type Opts struct {
	FreqHz     uint64 // centre frequency
	SF         uint8  // spreading factor 6..12
	BWHz       uint32 // one of the bandwidths in the datasheet's table: 125000, 250000, 500000, …
	CodingRate uint8  // denominator: 5..8 for 4/5..4/8
	SyncWord   byte   // 0x34 for public LoRaWAN networks, 0x12 for private ones
	Preamble   uint16 // symbols; LoRaWAN uses 8
	TxPowerDBm int8   // PA_BOOST output, 2..17 dBm
	// Gateway is the EUI recorded as LoRaRX.Gateway: 16 hex digits,
	// conventionally the board's MAC expanded to EUI-64.
	Gateway        string
	IncludePayload bool
	SPIHz          physic.Frequency // SPI clock; the chip accepts up to 10 MHz (§2.5.6)
	Logger         *slog.Logger
	Now            func() time.Time
	// Micros is the local µs counter stamped as tmst; nil counts from New.
	Micros func() uint32
}

// DefaultOpts returns EU868's first LoRaWAN channel at SF7/125 kHz, 4/5,
// public sync word.
func DefaultOpts() Opts {
	return Opts{FreqHz: 868_100_000, SF: 7, BWHz: 125_000, CodingRate: 5, SyncWord: 0x34, Preamble: 8, TxPowerDBm: 14, SPIHz: 1 * physic.MegaHertz}
}

// Stats is a snapshot of the receiver's counters.
type Stats struct {
	RxOK, RxBadCRC, RxNoCRC, Spurious uint64
	TxOK, TxFailed                    uint64
}

// Dev is one SX127x radio.
type Dev struct {
	name  string
	o     Opts
	log   *slog.Logger
	conn  spi.Conn
	reset gpio.PinOut
	dio0  gpio.PinIn
	lf    byte // modeLowFreq when below 525 MHz
	txReq chan txRequest
	poll  time.Duration

	mu    sync.Mutex
	stats Stats
	run   bool
}

type txRequest struct {
	payload []byte
	done    chan error
}

var _ drivers.Driver = (*Dev)(nil)

// New connects to the radio on port (mode 0, §4.3) with reset and DIO0 pins,
// validates o and returns a Dev. It does not touch the radio: Run resets and
// configures it.
func New(name string, port spi.Port, reset gpio.PinOut, dio0 gpio.PinIn, o *Opts) (*Dev, error) {
	if name == "" {
		return nil, fmt.Errorf("sx127x: new: missing driver name: %w", ErrInvalidOption)
	}
	if port == nil || reset == nil || dio0 == nil {
		return nil, fmt.Errorf("sx127x: new %s: spi port, reset and dio0 pins are required: %w", name, ErrInvalidOption)
	}
	opts, err := withDefaults(name, o)
	if err != nil {
		return nil, err
	}
	c, err := port.Connect(opts.SPIHz, spi.Mode0, 8)
	if err != nil {
		return nil, fmt.Errorf("sx127x: new %s: connect spi: %w", name, err)
	}
	d := &Dev{name: name, o: opts, conn: c, reset: reset, dio0: dio0, txReq: make(chan txRequest), poll: defaultPollInterval}
	if opts.FreqHz < hfPortMinHz {
		d.lf = modeLowFreq
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	d.log = lg.With("component", "sx127x", "driver", name)
	return d, nil
}

func withDefaults(name string, o *Opts) (Opts, error) {
	def := DefaultOpts()
	opts := drivers.OptsOf(o)
	drivers.SetDefault(&opts.FreqHz, def.FreqHz)
	drivers.SetDefault(&opts.SF, def.SF)
	drivers.SetDefault(&opts.BWHz, def.BWHz)
	drivers.SetDefault(&opts.CodingRate, def.CodingRate)
	drivers.SetDefault(&opts.SyncWord, def.SyncWord)
	drivers.SetDefault(&opts.Preamble, def.Preamble)
	drivers.SetDefault(&opts.TxPowerDBm, def.TxPowerDBm)
	drivers.SetDefault(&opts.SPIHz, def.SPIHz)
	bad := func(what string, v any) error {
		return fmt.Errorf("sx127x: new %s: %s %v: %w", name, what, v, ErrInvalidOption)
	}
	switch {
	case opts.FreqHz < 137_000_000 || opts.FreqHz > 1_020_000_000:
		return opts, bad("frequency (want 137-1020 MHz) Hz", opts.FreqHz)
	case opts.SF < 6 || opts.SF > 12:
		return opts, bad("spreading factor (want 6-12)", opts.SF)
	case bwCode(opts.BWHz) < 0:
		return opts, bad("bandwidth (want 7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000 or 500000) Hz", opts.BWHz)
	case opts.CodingRate < 5 || opts.CodingRate > 8:
		return opts, bad("coding rate denominator (want 5-8)", opts.CodingRate)
	case opts.TxPowerDBm < 2 || opts.TxPowerDBm > 17:
		return opts, bad("tx power (want 2-17) dBm", opts.TxPowerDBm)
	case len(opts.Gateway) != 16:
		return opts, bad("gateway EUI (want 16 hex digits)", fmt.Sprintf("%q", opts.Gateway))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Micros == nil {
		start := time.Now()
		opts.Micros = func() uint32 { return uint32(time.Since(start).Microseconds()) }
	}
	return opts, nil
}

func bwCode(hz uint32) int {
	for i, b := range bandwidths {
		if b == hz {
			return i
		}
	}
	return -1
}

// Name returns the instance name; it is Observation.Source.
func (d *Dev) Name() string { return d.name }

// Stats returns a snapshot of the counters.
func (d *Dev) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// frf is the RegFrf value for f: Frf = f · 2^19 / FXOSC (§4.1.4), rounded.
func frf(f uint64) uint32 {
	return uint32((f<<19 + fxosc/2) / fxosc)
}

// write sets consecutive registers from reg on (burst access, §4.3.1).
func (d *Dev) write(reg byte, vals ...byte) error {
	w := make([]byte, 1+len(vals))
	w[0] = reg | spiWrite
	copy(w[1:], vals)
	if err := d.conn.Tx(w, make([]byte, len(w))); err != nil {
		return fmt.Errorf("sx127x: %s: write register 0x%02x: %w", d.name, reg, err)
	}
	return nil
}

// read returns n consecutive registers from reg on.
func (d *Dev) read(reg byte, n int) ([]byte, error) {
	w := make([]byte, 1+n)
	w[0] = reg
	r := make([]byte, len(w))
	if err := d.conn.Tx(w, r); err != nil {
		return nil, fmt.Errorf("sx127x: %s: read register 0x%02x: %w", d.name, reg, err)
	}
	return r[1:], nil
}

func (d *Dev) read1(reg byte) (byte, error) {
	b, err := d.read(reg, 1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// init resets the chip and configures LoRa continuous receive.
func (d *Dev) init() error {
	// Manual reset: NRESET low for more than 100 µs, then 5 ms before the
	// chip is ready (§7.2.2).
	if err := d.reset.Out(gpio.Low); err != nil {
		return fmt.Errorf("sx127x: %s: reset pin: %w", d.name, err)
	}
	time.Sleep(200 * time.Microsecond)
	if err := d.reset.Out(gpio.High); err != nil {
		return fmt.Errorf("sx127x: %s: reset pin: %w", d.name, err)
	}
	time.Sleep(5 * time.Millisecond)
	v, err := d.read1(regVersion)
	if err != nil {
		return err
	}
	switch v {
	case chipVersion:
	case 0x00, 0xFF:
		return fmt.Errorf("sx127x: %s: RegVersion reads 0x%02x: no chip answers; check the SPI wiring, chip select and reset pin: %w", d.name, v, ErrNoChip)
	default:
		return fmt.Errorf("sx127x: %s: RegVersion 0x%02x, want 0x%02x (an SX1272 reads 0x22; this driver is for SX1276/77/78/79): %w", d.name, v, chipVersion, ErrWrongChip)
	}
	o := d.o
	f := frf(o.FreqHz)
	ldro := byte(0)
	if (1<<o.SF)*1000/o.BWHz >= 16 { // symbol time ≥ 16 ms needs LowDataRateOptimize (§4.1.1.6)
		ldro = 0x08
	}
	detOpt, detThr := byte(0xC3), byte(0x0A) // SF7-12 (§4.1.1.2 and RegDetectOptimize)
	if o.SF == 6 {
		detOpt, detThr = 0xC5, 0x0C
	}
	lna := byte(0x20) // G1, maximum gain
	if d.lf == 0 {
		lna |= 0x03 // LnaBoostHf: 150% LNA current on the HF port
	}
	steps := []struct {
		reg  byte
		vals []byte
	}{
		{regOpMode, []byte{modeSleep | d.lf}},
		{regOpMode, []byte{modeLongRange | modeSleep | d.lf}}, // LoRa mode can only be entered in sleep
		{regFrfMsb, []byte{byte(f >> 16), byte(f >> 8), byte(f)}},
		{regFifoTxBaseAddr, []byte{fifoTxBase, fifoRxBase}},
		{regLna, []byte{lna}},
		{regModemConfig1, []byte{byte(bwCode(o.BWHz))<<4 | (o.CodingRate-4)<<1}}, // explicit header
		{regModemConfig2, []byte{o.SF<<4 | 0x04}},                                // RxPayloadCrcOn
		{regModemConfig3, []byte{ldro | 0x04}},                                   // AgcAutoOn
		{regDetectOptimize, []byte{detOpt}},
		{regDetectThreshold, []byte{detThr}},
		{regPreambleMsb, []byte{byte(o.Preamble >> 8), byte(o.Preamble)}},
		{regSyncWord, []byte{o.SyncWord}},
		{regPaConfig, []byte{0x80 | 0x70 | byte(o.TxPowerDBm-2)}}, // PA_BOOST: Pout = 17 - (15 - OutputPower) (§6.4)
		{regDioMapping1, []byte{dio0RxDone}},
		{regIrqFlags, []byte{0xFF}}, // clear by writing ones
		{regOpMode, []byte{modeLongRange | modeRxContinuous | d.lf}},
	}
	for _, s := range steps {
		if err := d.write(s.reg, s.vals...); err != nil {
			return err
		}
	}
	return nil
}

// Run resets and configures the radio, then receives until ctx is done.
func (d *Dev) Run(ctx context.Context, emit drivers.Emit) error {
	d.mu.Lock()
	if d.run {
		d.mu.Unlock()
		return fmt.Errorf("sx127x: run %s: already running", d.name)
	}
	d.run = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.run = false
		d.mu.Unlock()
	}()
	if err := d.dio0.In(gpio.PullDown, gpio.RisingEdge); err != nil {
		return fmt.Errorf("sx127x: run %s: dio0 edge detection: %w", d.name, err)
	}
	if err := d.init(); err != nil {
		return err
	}
	defer func() { _ = d.write(regOpMode, modeLongRange|modeSleep|d.lf) }()
	for {
		if ctx.Err() != nil {
			return nil
		}
		select {
		case r := <-d.txReq:
			r.done <- d.transmit(ctx, r.payload)
			continue
		default:
		}
		// A bounded wait lets Run notice ctx and Transmit requests; the
		// kernel queues an edge that comes meanwhile.
		if !d.dio0.WaitForEdge(d.poll) {
			continue
		}
		tmst, now := d.o.Micros(), d.o.Now()
		rx, ok, err := d.receive(tmst)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := emit(ctx, drivers.Observation{Kind: drivers.KindLoRaRX, Source: d.name, Time: now, Data: rx}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sx127x: run %s: emit: %w", d.name, err)
		}
	}
}

// Sentinel errors, matched with errors.Is.
var (
	// ErrNoChip is returned by Run when RegVersion reads all zeros or all
	// ones: nothing answers on the SPI bus.
	ErrNoChip = errors.New("no chip")
	// ErrWrongChip is returned by Run when RegVersion is not 0x12.
	ErrWrongChip = errors.New("not an SX1276/77/78/79")
	// ErrInvalidOption is returned by New for an option out of range.
	ErrInvalidOption = errors.New("invalid option")
	// ErrNotRunning is returned by Transmit when Run is not running.
	ErrNotRunning = errors.New("not running")
	// ErrTxTimeout is returned by Transmit when TxDone does not come.
	ErrTxTimeout = errors.New("transmission did not complete")
)
