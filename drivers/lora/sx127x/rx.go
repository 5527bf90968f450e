package sx127x

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/lora/lorawan"
)

// receive handles one DIO0 edge in receive mode (§4.1.6: RxDone, then read
// the FIFO from RegFifoRxCurrentAddr for RegRxNbBytes bytes). ok is false
// for frames that are counted but not attested.
func (d *Dev) receive(tmst uint32) (rx drivers.LoRaRX, ok bool, err error) {
	flags, err := d.read1(regIrqFlags)
	if err != nil {
		return rx, false, err
	}
	if err := d.write(regIrqFlags, 0xFF); err != nil {
		return rx, false, err
	}
	if flags&irqRxDone == 0 {
		d.count(func(s *Stats) { s.Spurious++ })
		return rx, false, nil
	}
	if flags&irqPayloadCrcError != 0 {
		d.count(func(s *Stats) { s.RxBadCRC++ })
		return rx, false, nil
	}
	hop, err := d.read1(regHopChannel)
	if err != nil {
		return rx, false, err
	}
	if hop&hopCrcOnPayload == 0 {
		// The sender's header announced no CRC: the chip checked nothing.
		d.count(func(s *Stats) { s.RxNoCRC++ })
		return rx, false, nil
	}
	addr, err := d.read1(regFifoRxCurrent)
	if err != nil {
		return rx, false, err
	}
	n, err := d.read1(regRxNbBytes)
	if err != nil {
		return rx, false, err
	}
	if err := d.write(regFifoAddrPtr, addr); err != nil {
		return rx, false, err
	}
	phy, err := d.read(regFifo, int(n))
	if err != nil {
		return rx, false, err
	}
	sig, err := d.read(regPktSnrValue, 2) // RegPktSnrValue, RegPktRssiValue
	if err != nil {
		return rx, false, err
	}
	rssi, snr := packetSignal(sig[1], sig[0], d.lf == 0)
	o := d.o
	sum := sha256.Sum256(phy)
	rx = drivers.LoRaRX{
		SHA256:   sum[:],
		Size:     uint32(len(phy)),
		FreqHz:   o.FreqHz,
		Mod:      "LORA",
		SF:       o.SF,
		BWHz:     o.BWHz,
		CodeRate: fmt.Sprintf("4/%d", o.CodingRate),
		DataRate: dataRate(o.SF, o.BWHz),
		RSSI:     rssi,
		SNR:      snr,
		Tmst:     tmst,
		Gateway:  o.Gateway,
	}
	if o.IncludePayload {
		rx.Payload = phy
	}
	if h, ok := lorawan.Parse(phy); ok {
		rx.MType = h.MType
		if h.HasFHDR {
			fcnt := uint32(h.FCnt)
			rx.DevAddr, rx.FCnt = h.DevAddrString(), &fcnt
		}
	}
	d.count(func(s *Stats) { s.RxOK++ })
	return rx, true, nil
}

// packetSignal applies §5.5.5: SNR = RegPktSnrValue / 4 (two's complement);
// packet RSSI = offset + 16/15 · PacketRssi when SNR ≥ 0, and
// offset + PacketRssi + SNR when SNR < 0, with offset −157 dBm on the HF
// port and −164 dBm on the LF port.
func packetSignal(pktRSSI, pktSNR byte, hf bool) (rssi, snr float64) {
	snr = float64(int8(pktSNR)) / 4
	off := float64(rssiOffsetLF)
	if hf {
		off = rssiOffsetHF
	}
	if snr >= 0 {
		return off + float64(pktRSSI)*16/15, snr
	}
	return off + float64(pktRSSI) + snr, snr
}

// dataRate spells the data rate as packet forwarders do: "SF7BW125".
func dataRate(sf uint8, bwHz uint32) string {
	if bwHz%1000 == 0 {
		return fmt.Sprintf("SF%dBW%d", sf, bwHz/1000)
	}
	return fmt.Sprintf("SF%dBW%g", sf, float64(bwHz)/1000)
}

func (d *Dev) count(f func(*Stats)) {
	d.mu.Lock()
	f(&d.stats)
	d.mu.Unlock()
}

// Transmit sends payload with the configured radio settings (explicit
// header, CRC on, normal IQ), then returns the radio to continuous receive.
// It runs on Run's goroutine between receptions, so it needs Run running.
func (d *Dev) Transmit(ctx context.Context, payload []byte) error {
	if len(payload) == 0 || len(payload) > maxPayload {
		return fmt.Errorf("sx127x: transmit %s: %d bytes: want 1-%d: %w", d.name, len(payload), maxPayload, ErrInvalidOption)
	}
	d.mu.Lock()
	running := d.run
	d.mu.Unlock()
	if !running {
		return fmt.Errorf("sx127x: transmit %s: %w", d.name, ErrNotRunning)
	}
	r := txRequest{payload: payload, done: make(chan error, 1)}
	select {
	case d.txReq <- r:
	case <-ctx.Done():
		return fmt.Errorf("sx127x: transmit %s: %w", d.name, ctx.Err())
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		// Run finishes the transmission and drops the result.
		return fmt.Errorf("sx127x: transmit %s: %w", d.name, ctx.Err())
	}
}

// txTimeout bounds a transmission: the longest LoRa frame (255 bytes at
// SF12/125 kHz) is on air for about 9.2 s.
const txTimeout = 12 * time.Second

// transmit runs on Run's goroutine (§4.1.6.1: standby, fill the FIFO from
// RegFifoTxBaseAddr, set RegPayloadLength, TX mode, wait for TxDone).
func (d *Dev) transmit(ctx context.Context, payload []byte) (err error) {
	defer func() {
		d.count(func(s *Stats) {
			if err == nil {
				s.TxOK++
			} else {
				s.TxFailed++
			}
		})
	}()
	steps := []struct {
		reg  byte
		vals []byte
	}{
		{regOpMode, []byte{modeLongRange | modeStandby | d.lf}},
		{regDioMapping1, []byte{dio0TxDone}},
		{regFifoAddrPtr, []byte{fifoTxBase}},
		{regFifo, payload},
		{regPayloadLength, []byte{byte(len(payload))}},
		{regIrqFlags, []byte{0xFF}},
		{regOpMode, []byte{modeLongRange | modeTx | d.lf}},
	}
	for _, s := range steps {
		if err := d.write(s.reg, s.vals...); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(txTimeout)
	done := false
	for !done && time.Now().Before(deadline) && ctx.Err() == nil {
		done = d.dio0.WaitForEdge(d.poll)
	}
	flags, err := d.read1(regIrqFlags)
	if err != nil {
		return err
	}
	// Back to receive whatever happened, so the receiver keeps working.
	for _, s := range []struct{ reg, val byte }{
		{regIrqFlags, 0xFF},
		{regDioMapping1, dio0RxDone},
		{regOpMode, modeLongRange | modeRxContinuous | d.lf},
	} {
		if err := d.write(s.reg, s.val); err != nil {
			return err
		}
	}
	if flags&irqTxDone == 0 {
		return fmt.Errorf("sx127x: transmit %s: RegIrqFlags 0x%02x: %w", d.name, flags, ErrTxTimeout)
	}
	return nil
}
