package lora

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/lora/gwmp"
	"github.com/edge-agent/edge-agent/drivers/lora/lorawan"
)

// Outcomes of a downlink in its lora.tx record.
const (
	TxOK       = "ok"       // the gateway's TX_ACK reported no error
	TxRejected = "rejected" // the TX_ACK named an error (drivers.LoRaTX.Error)
	TxTimeout  = "timeout"  // no TX_ACK within tx_ack_timeout
	TxNoAck    = "v1"       // protocol v1 gateway: it sends no TX_ACK
)

// recordTx emits the lora.tx record of a finished downlink. A PULL_RESP
// whose txpk does not decode is relayed all the same (the network server
// and gateway are the judges of it) but not attested: it is counted.
func (d *Dev) recordTx(ctx context.Context, emit drivers.Emit, dl *downlink, now time.Time) error {
	var pr gwmp.PullRespBody
	if err := json.Unmarshal(dl.body, &pr); err != nil {
		d.countInvalid(nil, "txpk", dl.eui.String(), fmt.Errorf("lora: PULL_RESP from %s: %w: %v", upName(dl), gwmp.ErrJSON, err), now)
		return nil
	}
	pk := pr.TXPK
	sum := sha256.Sum256(pk.Data)
	tx := drivers.LoRaTX{
		Gateway: dl.eui.String(), Upstream: upName(dl), SHA256: sum[:], Size: uint32(len(pk.Data)),
		FreqHz: uint64(pk.Freq), Mod: pk.Modu, DataRate: pk.Datr.String(), CodeRate: pk.Codr, PowerDBm: pk.Powe,
		RFChain: pk.RFCh, Immediate: pk.Imme, Tmst: pk.Tmst, GPSTimeMS: pk.Tmms, IPol: pk.IPol,
		Token: dl.token, DelayUS: uint64(now.Sub(dl.sent) / time.Microsecond),
	}
	if d.o.IncludePayload {
		tx.Payload = pk.Data
	}
	if h, ok := lorawan.Parse(pk.Data); ok {
		tx.MType = h.MType
		if h.HasFHDR {
			fcnt := uint32(h.FCnt)
			tx.DevAddr, tx.FCnt, tx.FPort = h.DevAddrString(), &fcnt, h.FPort
		}
	}
	switch {
	case dl.version < gwmp.Version2:
		tx.Ack, tx.DelayUS = TxNoAck, 0
	case dl.timedOut || !dl.acked:
		tx.Ack = TxTimeout
	default:
		tx.Ack = TxOK
		if len(dl.ack) > 0 {
			var ab gwmp.TxAckBody
			if err := json.Unmarshal(trimNUL(dl.ack), &ab); err != nil {
				d.countInvalid(nil, "tx_ack", dl.eui.String(), fmt.Errorf("lora: TX_ACK: %w: %v", gwmp.ErrJSON, err), now)
				tx.Ack = TxRejected
				tx.Error = "UNDECODABLE"
			} else {
				a := ab.TxpkAck
				if a.Error != "" && a.Error != "NONE" {
					tx.Ack, tx.Error = TxRejected, a.Error
				}
				tx.Warn, tx.Value = a.Warn, string(a.Value)
			}
		}
	}
	d.mu.Lock()
	if g, ok := d.gws[dl.eui]; ok {
		if tx.Ack == TxOK {
			g.TxAcked++
		} else if tx.Ack != TxNoAck {
			g.TxFailed++
		}
	}
	d.stats.TxRecords++
	d.mu.Unlock()
	return emit(ctx, drivers.Observation{Kind: drivers.KindLoRaTX, Source: d.name, Time: now, Data: tx})
}

func upName(dl *downlink) string {
	if dl.up == nil {
		return "agent"
	}
	return dl.up.cfg.Name
}

// Send transmits pk through the gateway (a PULL_RESP to the address of its
// last PULL_DATA) and, for protocol v2 gateways, waits for the TX_ACK and
// returns its verdict: nil, a *TxError (matching ErrTxRejected), or
// ErrTxAckTimeout. Protocol v1 has no TX_ACK, so Send returns once the
// datagram is sent. pk.Size is set from pk.Data. Like relayed downlinks,
// each Send gets a lora.tx record (upstream "agent"). The daemon itself
// never calls Send: downlinks come from the upstreams.
func (d *Dev) Send(ctx context.Context, gatewayEUI gwmp.EUI, pk TxPacket) error {
	eui := gatewayEUI.String()
	pk.Size = uint16(len(pk.Data))
	ch := make(chan txResult, 1)
	now := d.o.Now()
	d.mu.Lock()
	conn := d.conn
	g, known := d.gws[gatewayEUI]
	if conn == nil {
		d.mu.Unlock()
		return fmt.Errorf("lora: send to %s: %w: start the driver first", eui, ErrNotRunning)
	}
	if !known || !g.PullAddr.IsValid() {
		d.mu.Unlock()
		return fmt.Errorf("lora: send to %s: %w: it has sent no PULL_DATA yet; check its serv_port_down", eui, ErrNoDownlinkPath)
	}
	to, version := g.PullAddr, g.Version
	dl := &downlink{eui: gatewayEUI, version: version, sent: now, deadline: now.Add(d.o.TxAckTimeout), ch: ch}
	if version >= gwmp.Version2 && len(d.pending) >= maxPending {
		d.mu.Unlock()
		return fmt.Errorf("lora: send to %s: %d downlinks await a TX_ACK: %w", eui, maxPending, ErrTxAckTimeout)
	}
	if version >= gwmp.Version2 {
		for {
			dl.token = d.o.Token()
			if _, busy := d.pending[pendKey{gatewayEUI, dl.token}]; !busy {
				break
			}
		}
		d.pending[pendKey{gatewayEUI, dl.token}] = dl
	}
	g.TxSent++
	work := d.work
	d.mu.Unlock()
	unpend := func() {
		d.mu.Lock()
		delete(d.pending, pendKey{gatewayEUI, dl.token})
		d.mu.Unlock()
	}
	record := func() {
		select {
		case work <- item{dl: dl, at: d.o.Now()}:
		case <-ctx.Done():
		}
	}

	b, err := gwmp.Encode(gwmp.Packet{Header: gwmp.Header{Version: version, Token: dl.token, ID: gwmp.PullResp}, Pull: &gwmp.PullRespBody{TXPK: pk}})
	if err == nil {
		dl.body = b[4:]
		_, err = conn.WriteToUDPAddrPort(b, to)
	}
	if err != nil {
		unpend()
		d.mu.Lock()
		g.TxFailed++
		d.mu.Unlock()
		return fmt.Errorf("lora: send to %s: %w", eui, err)
	}
	if version < gwmp.Version2 {
		record()
		return nil
	}
	timer := time.NewTimer(d.o.TxAckTimeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		record()
		if r.ack == nil || r.ack.TxpkAck.Error == "" || r.ack.TxpkAck.Error == "NONE" {
			if r.ack != nil && r.ack.TxpkAck.Warn != "" {
				d.log.Warn("gateway changed the transmission", "gateway", eui, "warn", r.ack.TxpkAck.Warn, "value", string(r.ack.TxpkAck.Value))
			}
			return nil
		}
		return &TxError{Gateway: eui, Code: r.ack.TxpkAck.Error}
	case <-timer.C:
		d.mu.Lock()
		_, still := d.pending[pendKey{gatewayEUI, dl.token}]
		delete(d.pending, pendKey{gatewayEUI, dl.token})
		d.mu.Unlock()
		if !still { // the TX_ACK arrived as the timer fired
			r := <-ch
			record()
			if r.ack == nil || r.ack.TxpkAck.Error == "" || r.ack.TxpkAck.Error == "NONE" {
				return nil
			}
			return &TxError{Gateway: eui, Code: r.ack.TxpkAck.Error}
		}
		dl.timedOut = true
		record()
		return fmt.Errorf("lora: send to %s: %w within %v; check that the forwarder speaks protocol v2 and that its downlink port reaches this host", eui, ErrTxAckTimeout, d.o.TxAckTimeout)
	case <-ctx.Done():
		unpend()
		d.mu.Lock()
		g.TxFailed++
		d.mu.Unlock()
		return fmt.Errorf("lora: send to %s: %w", eui, ctx.Err())
	}
}
