package sx127x

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/spi/spitest"

	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/drivers"
)

// Transcript helpers: one SPI transaction per register access (§4.3: the
// first byte is wnr|address, then data; reads return data after the address
// byte).
func w(reg byte, vals ...byte) conntest.IO {
	return conntest.IO{W: append([]byte{reg | 0x80}, vals...), R: make([]byte, 1+len(vals))}
}

func r(reg byte, vals ...byte) conntest.IO {
	return conntest.IO{W: append([]byte{reg}, make([]byte, len(vals))...), R: append([]byte{0}, vals...)}
}

// initOps is the configuration for 868.1 MHz, SF7, 125 kHz, 4/5, sync word
// 0x34, preamble 8, 14 dBm, as Run writes it after reset.
func initOps() []conntest.IO {
	return []conntest.IO{
		r(0x42, 0x12),             // RegVersion
		w(0x01, 0x00),             // sleep
		w(0x01, 0x80),             // LoRa mode, sleep
		w(0x06, 0xD9, 0x06, 0x66), // Frf = 868.1 MHz · 2^19 / 32 MHz = 0xD90666
		w(0x0E, 0x80, 0x00),       // FIFO TX base 0x80, RX base 0x00
		w(0x0C, 0x23),             // LNA max gain, boost on the HF port
		w(0x1D, 0x72),             // BW 125 kHz (0111), CR 4/5 (001), explicit header
		w(0x1E, 0x74),             // SF7, RxPayloadCrcOn
		w(0x26, 0x04),             // AgcAutoOn, no LowDataRateOptimize at SF7
		w(0x31, 0xC3),             // DetectOptimize SF7-12
		w(0x37, 0x0A),             // DetectionThreshold SF7-12
		w(0x20, 0x00, 0x08),       // preamble 8
		w(0x39, 0x34),             // public sync word
		w(0x09, 0xFC),             // PA_BOOST, MaxPower 7, OutputPower 12 → 14 dBm
		w(0x40, 0x00),             // DIO0 = RxDone
		w(0x12, 0xFF),             // clear IRQ flags
		w(0x01, 0x85),             // LoRa, RX continuous
	}
}

var dataUp = []byte{0x40, 0xDA, 0x1B, 0x01, 0x26, 0x80, 0x02, 0x01, 0x0A, 0xCA, 0xFE, 0x01, 0x02, 0x03, 0x04}

func rxOps(fifoAddr byte, phy []byte, snr, rssi byte) []conntest.IO {
	return []conntest.IO{
		r(0x12, 0x50),           // RxDone | ValidHeader
		w(0x12, 0xFF),           // clear
		r(0x1C, 0x40),           // CrcOnPayload
		r(0x10, fifoAddr),       // RegFifoRxCurrentAddr
		r(0x13, byte(len(phy))), // RegRxNbBytes
		w(0x0D, fifoAddr),       // RegFifoAddrPtr
		r(0x00, phy...),         // FIFO burst read
		r(0x19, snr, rssi),      // RegPktSnrValue, RegPktRssiValue
	}
}

type rig struct {
	dev   *Dev
	spi   *spitest.Playback
	reset *gpiotest.Pin
	dio0  *gpiotest.Pin
}

func newRig(tb testing.TB, ops []conntest.IO, o Opts) *rig {
	tb.Helper()
	p := &spitest.Playback{Playback: conntest.Playback{Ops: ops, DontPanic: true}}
	rg := &rig{
		spi:   p,
		reset: &gpiotest.Pin{N: "GPIO17", Num: 17},
		dio0:  &gpiotest.Pin{N: "GPIO4", Num: 4, EdgesChan: make(chan gpio.Level, 16)},
	}
	if o.Gateway == "" {
		o.Gateway = "B827EBFFFE000001"
	}
	d, err := New("sx", p, rg.reset, rg.dio0, &o)
	if err != nil {
		tb.Fatal(err)
	}
	d.poll = 5 * time.Millisecond
	rg.dev = d
	return rg
}

// waitOps waits until the radio has consumed n transcript entries.
func (rg *rig) waitOps(tb testing.TB, n int) {
	tb.Helper()
	condtest.WaitFor(tb, 5*time.Second, fmt.Sprintf("the radio to consume %d transcript entries", n), func() bool {
		rg.spi.Lock()
		defer rg.spi.Unlock()
		return rg.spi.Count >= n
	})
}

func TestReceive(t *testing.T) {
	opaque := []byte{0xFF, 1, 2, 3, 4, 5, 6, 7}
	ops := initOps()
	nInit := len(ops)
	ops = append(ops, rxOps(0x00, dataUp, 0x1C, 0x5A)...)          // SNR +7 dB, PacketRssi 90
	ops = append(ops, r(0x12, 0x70), w(0x12, 0xFF))                // RxDone with PayloadCrcError
	ops = append(ops, r(0x12, 0x50), w(0x12, 0xFF), r(0x1C, 0x00)) // header announced no CRC
	ops = append(ops, r(0x12, 0x00), w(0x12, 0xFF))                // spurious edge
	ops = append(ops, rxOps(0x20, opaque, 0xF6, 0x28)...)          // SNR -2.5 dB, PacketRssi 40
	ops = append(ops, w(0x01, 0x80))                               // sleep at exit
	var tick uint32 = 4294967280                                   // the fifth edge wraps past 2^32
	rg := newRig(t, ops, Opts{IncludePayload: true, Micros: func() uint32 { tick += 10; return tick }})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	obs := make(chan drivers.Observation, 8)
	done := make(chan error, 1)
	go func() {
		done <- rg.dev.Run(ctx, func(_ context.Context, o drivers.Observation) error { obs <- o; return nil })
	}()
	rg.waitOps(t, nInit)
	if rg.reset.Read() != gpio.High {
		t.Errorf("reset pin left %v; want High after the reset pulse", rg.reset.Read())
	}
	for range 5 {
		rg.dio0.EdgesChan <- gpio.High
	}
	fcnt := uint32(0x0102)
	sum1, sum2 := sha256.Sum256(dataUp), sha256.Sum256(opaque)
	want := []drivers.LoRaRX{
		{SHA256: sum1[:], Size: 15, Payload: dataUp, FreqHz: 868_100_000, Mod: "LORA", SF: 7, BWHz: 125_000, CodeRate: "4/5", DataRate: "SF7BW125",
			RSSI: -157 + 90*16.0/15, SNR: 7, Tmst: 4294967290, Gateway: "B827EBFFFE000001", MType: "UnconfirmedDataUp", DevAddr: "26011BDA", FCnt: &fcnt},
		{SHA256: sum2[:], Size: 8, Payload: opaque, FreqHz: 868_100_000, Mod: "LORA", SF: 7, BWHz: 125_000, CodeRate: "4/5", DataRate: "SF7BW125",
			RSSI: -157 + 40 - 2.5, SNR: -2.5, Tmst: 34, Gateway: "B827EBFFFE000001"},
	}
	for i, wnt := range want {
		select {
		case o := <-obs:
			if o.Kind != drivers.KindLoRaRX || o.Source != "sx" || !reflect.DeepEqual(o.Data, wnt) {
				t.Fatalf("observation %d:\n got %+v\nwant %+v", i, o.Data, wnt)
			}
		case err := <-done:
			t.Fatalf("Run ended: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatalf("no observation %d", i)
		}
	}
	rg.waitOps(t, len(ops)-1)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := rg.spi.Close(); err != nil {
		t.Fatal(err)
	}
	if st := rg.dev.Stats(); st != (Stats{RxOK: 2, RxBadCRC: 1, RxNoCRC: 1, Spurious: 1}) {
		t.Fatalf("stats %+v", st)
	}
}

func TestTransmit(t *testing.T) {
	beacon := []byte{0, 0, 0x12, 0x34, 0x56, 0x78, 0x9A}
	ops := initOps()
	nInit := len(ops)
	ops = append(ops,
		w(0x01, 0x81),              // standby
		w(0x40, 0x40),              // DIO0 = TxDone
		w(0x0D, 0x80),              // FIFO pointer to the TX base
		w(0x00, beacon...),         // FIFO burst write
		w(0x22, byte(len(beacon))), // RegPayloadLength
		w(0x12, 0xFF),
		w(0x01, 0x83), // TX
		r(0x12, 0x08), // TxDone
		w(0x12, 0xFF),
		w(0x40, 0x00), // DIO0 back to RxDone
		w(0x01, 0x85), // RX continuous
		w(0x01, 0x80), // sleep at exit
	)
	rg := newRig(t, ops, Opts{})
	if err := rg.dev.Transmit(context.Background(), beacon); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Transmit before Run = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- rg.dev.Run(ctx, func(context.Context, drivers.Observation) error { return nil }) }()
	rg.waitOps(t, nInit)
	go func() { // TxDone edge once the chip is in TX
		rg.waitOps(t, nInit+7)
		rg.dio0.EdgesChan <- gpio.High
	}()
	if err := rg.dev.Transmit(ctx, beacon); err != nil {
		t.Fatalf("Transmit = %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := rg.spi.Close(); err != nil {
		t.Fatal(err)
	}
	if st := rg.dev.Stats(); st.TxOK != 1 || st.TxFailed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestChipCheck(t *testing.T) {
	tests := []struct {
		name    string
		version byte
		want    error
	}{
		{"nothing on the bus", 0x00, ErrNoChip},
		{"floating miso", 0xFF, ErrNoChip},
		{"sx1272", 0x22, ErrWrongChip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rg := newRig(t, []conntest.IO{r(0x42, tt.version)}, Opts{})
			if err := rg.dev.Run(context.Background(), nil); !errors.Is(err, tt.want) {
				t.Fatalf("Run = %v; want %v", err, tt.want)
			}
		})
	}
}

func TestRegisterMath(t *testing.T) {
	frfs := []struct {
		hz   uint64
		want uint32
	}{
		{868_100_000, 0xD90666},
		{915_000_000, 0xE4C000},
		{433_175_000, 0x6C4B33},
	}
	for _, tt := range frfs {
		if got := frf(tt.hz); got != tt.want {
			t.Errorf("frf(%d) = %#x; want %#x", tt.hz, got, tt.want)
		}
	}
	sig := []struct {
		name      string
		rssi, snr byte
		hf        bool
		wantRSSI  float64
		wantSNR   float64
	}{
		{"hf positive snr", 90, 0x1C, true, -157 + 96, 7},
		{"hf negative snr", 40, 0xF6, true, -157 + 40 - 2.5, -2.5},
		{"lf positive snr", 60, 0x04, false, -164 + 64, 1},
		{"lf negative snr", 20, 0xD8, false, -164 + 20 - 10, -10},
	}
	for _, tt := range sig {
		t.Run(tt.name, func(t *testing.T) {
			r, s := packetSignal(tt.rssi, tt.snr, tt.hf)
			if r != tt.wantRSSI || s != tt.wantSNR {
				t.Fatalf("packetSignal = %v, %v; want %v, %v", r, s, tt.wantRSSI, tt.wantSNR)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		o    Opts
	}{
		{"no gateway", Opts{Gateway: ""}},
		{"sf 13", Opts{Gateway: "0102030405060708", SF: 13}},
		{"odd bandwidth", Opts{Gateway: "0102030405060708", BWHz: 100_000}},
		{"cr 4/9", Opts{Gateway: "0102030405060708", CodingRate: 9}},
		{"2.4 GHz", Opts{Gateway: "0102030405060708", FreqHz: 2_400_000_000}},
		{"power 20", Opts{Gateway: "0102030405060708", TxPowerDBm: 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &spitest.Playback{}
			if _, err := New("x", p, &gpiotest.Pin{}, &gpiotest.Pin{}, &tt.o); !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("New = %v", err)
			}
		})
	}
}

func TestProbeBoard(t *testing.T) {
	dir := t.TempDir()
	present := dir + "/spidev0.0"
	if err := os.WriteFile(present, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spi  string
		want drivers.Probe
	}{
		{"missing node", dir + "/spidev9.9", drivers.Skipped},
		{"present node", present, drivers.Loaded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ProbeBoard(context.Background(), Board{SPI: tt.spi})
			if p != tt.want || (p == drivers.Loaded) != (err == nil) {
				t.Fatalf("ProbeBoard = %v, %v; want %v", p, err, tt.want)
			}
		})
	}
}
