package collect

import (
	"context"
	"time"

	"github.com/edge-agent/edge-agent/uplink/p2p"
)

// Receipt coalescing ([mqtt] receipt_interval): commits add the seqs they
// made durable to rpending, and every interval each device gets one signed
// receipt whose ranges cover all of them. A device sending n records per
// interval to this collector costs one signature here and one verification
// there instead of up to n. The receipt format is unchanged (ranges were
// always allowed); agents need nothing new.

type devChains = map[[16]byte][]uint64

// maxReceiptRanges bounds the ranges one receipt carries, well inside
// what agents decode (p2p: 4,096 array elements, 64 KiB). Shared
// subscriptions hand a collector every Nth record of a device, so its
// ranges are often single seqs.
const maxReceiptRanges = 1024

// signReceipt signs one receipt for dev covering chains.
func (c *Collector) signReceipt(dev string, chains devChains) ([]byte, error) {
	rc := &p2p.Receipt{Network: c.cfg.Network, Collector: c.peerID(), Device: dev, Time: c.now().UnixNano()}
	for ch, s := range chains {
		rc.Chains = append(rc.Chains, p2p.ChainRanges{Chain: ch, Ranges: p2p.SeqRanges(s)})
	}
	return p2p.SignReceipt(c.key, rc)
}

// publishReceipts signs and publishes MQTT receipts, one per device (more
// when its ranges exceed maxReceiptRanges), and returns how many went out.
func (c *Collector) publishReceipts(devs map[string]devChains) uint64 {
	var n uint64
	for dev, chains := range devs {
		for _, part := range splitRanges(chains, maxReceiptRanges) {
			raw, err := c.signReceipt(dev, part)
			if err == nil {
				err = c.sub.Publish(c.cfg.MQTT.TopicPrefix+"/"+dev+"/receipt", raw)
			}
			if err != nil {
				c.log.Warn("mqtt receipt not sent; the device will re-send and get one later", "device", dev, "err", err)
				continue
			}
			n++
			c.met.Receipt("mqtt")
		}
	}
	return n
}

// splitRanges cuts chains into parts of at most limit seq ranges each.
func splitRanges(chains devChains, limit int) []devChains {
	var parts []devChains
	cur, used := devChains{}, 0
	for ch, seqs := range chains {
		for _, rg := range p2p.SeqRanges(seqs) {
			if used == limit {
				parts, cur, used = append(parts, cur), devChains{}, 0
			}
			for q := rg[0]; ; q++ {
				cur[ch] = append(cur[ch], q)
				if q == rg[1] {
					break
				}
			}
			used++
		}
	}
	if used > 0 {
		parts = append(parts, cur)
	}
	return parts
}

// holdReceipts adds committed seqs to what the next tick receipts.
func (c *Collector) holdReceipts(devs map[string]devChains) {
	if len(devs) == 0 {
		return
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rpending == nil {
		c.rpending = map[string]devChains{}
	}
	for dev, chains := range devs {
		d := c.rpending[dev]
		if d == nil {
			c.rpending[dev] = chains
			continue
		}
		for ch, seqs := range chains {
			d[ch] = append(d[ch], seqs...)
		}
	}
}

// flushReceipts sends what is held.
func (c *Collector) flushReceipts() {
	c.rmu.Lock()
	devs := c.rpending
	c.rpending = nil
	c.rmu.Unlock()
	if len(devs) == 0 {
		return
	}
	n := c.publishReceipts(devs)
	c.mu.Lock()
	c.stats.Receipts += n
	c.mu.Unlock()
}

// receiptLoop flushes every iv until ctx is done, and once more then (the
// records are committed; a receipt not sent only means a re-send).
func (c *Collector) receiptLoop(ctx context.Context, iv time.Duration) {
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.flushReceipts()
			return
		case <-t.C:
			c.flushReceipts()
		}
	}
}
