package mqtt

import (
	"context"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/store"
	"github.com/edge-agent/edge-agent/uplink"
)

// receiptTopic is where collectors answer this device.
func (u *Uplink) receiptTopic() string { return u.c.TopicPrefix + "/" + u.c.DeviceID + "/receipt" }

// rflight is one record published and not yet receipted enough.
type rflight struct {
	seq    uint64
	chain  [16]byte
	data   []byte
	sentAt time.Time
	tries  int
}

// pumpReceipts is pump for end-to-end receipts: records are published at
// QoS 1 with up to Window awaiting receipts, the queue is acked up to the
// highest seq below which every record has MinReceipts receipts from
// trusted collectors, and records still short of that after ResendAfter
// (doubling to ResendMax) are published again. PUBACKs only pace the
// connection; they move nothing out of the outbox.
func (u *Uplink) pumpReceipts(ctx context.Context, q uplink.Queue, client paho.Client, lost <-chan error) error {
	trusted := make(map[string]bool, len(u.c.Collectors))
	for _, c := range u.c.Collectors {
		trusted[c] = true
	}
	rc := make(chan *Receipt, 1024)
	onReceipt := func(_ paho.Client, m paho.Message) {
		r, err := u.c.OpenReceipt(m.Payload())
		if err != nil || r.Device != u.c.DeviceID || !trusted[r.Collector] {
			u.update(func(s *Status) { s.ReceiptsRefused++ })
			u.log.Debug("mqtt: receipt refused", "err", err)
			return
		}
		select {
		case rc <- r:
		default: // the pump is behind: the record is re-sent and receipted again
		}
	}
	topic := u.receiptTopic()
	if err := waitToken(ctx, client.Subscribe(topic, 1, onReceipt), u.c.ConnectTimeout, lost); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("mqtt: subscribe %s: %w", topic, err)
	}
	acked, err := q.Acked()
	if err != nil {
		return &queueError{fmt.Errorf("mqtt: read ack mark: %w", err)}
	}
	var (
		fl        []rflight
		buf       []store.Record
		sent      = acked
		done      = acked
		stored    = acked
		cov       = map[string]map[[16]byte]*uplink.SeqSet{}
		lastFlush = time.Now()
		tick      = time.NewTicker(ackFlushEvery)
		batch     = max(u.c.Window, minBatch)
	)
	defer tick.Stop()
	count := func(f *rflight) int {
		n := 0
		for _, chains := range cov {
			if s := chains[f.chain]; s != nil && s.Has(f.seq) {
				n++
			}
		}
		return n
	}
	flush := func() error {
		if done == stored {
			return nil
		}
		if err := q.Ack(done); err != nil {
			return &queueError{fmt.Errorf("mqtt: ack seq %d: %w", done, err)}
		}
		stored, lastFlush = done, time.Now()
		u.update(func(s *Status) { s.AckedSeq = done })
		return nil
	}
	publish := func(f *rflight) {
		client.Publish(u.topicOf(f.data), 1, false, f.data)
		f.sentAt = time.Now()
		f.tries++
		u.update(func(s *Status) {
			s.Published++
			if f.seq <= u.maxSent {
				s.Resent++
			}
			u.maxSent = max(u.maxSent, f.seq)
		})
	}
	apply := func(r *Receipt) {
		chains := cov[r.Collector]
		if chains == nil {
			chains = map[[16]byte]*uplink.SeqSet{}
			cov[r.Collector] = chains
		}
		for ch, rs := range r.Chains {
			if chains[ch] == nil {
				chains[ch] = &uplink.SeqSet{}
			}
			chains[ch].Add(rs)
		}
		now := u.c.Now()
		u.update(func(s *Status) { s.Receipts++; s.LastReceipt, s.LastReceiptBy = now, r.Collector })
	}
	for {
		// Reap: drop the head while it has enough receipts.
		i := 0
		for i < len(fl) && count(&fl[i]) >= u.c.MinReceipts {
			done = fl[i].seq
			i++
		}
		if i > 0 {
			fl = append(fl[:0], fl[i:]...)
			for _, chains := range cov {
				for _, s := range chains {
					s.Forget(done)
				}
			}
			u.update(func(s *Status) { s.Acked += uint64(i) })
		}
		if time.Since(lastFlush) >= ackFlushEvery {
			if err := flush(); err != nil {
				return err
			}
		}
		var changed <-chan struct{}
		for len(fl) < u.c.Window {
			if len(buf) == 0 {
				changed = q.Changed()
				if buf, err = q.Pending(sent, batch); err != nil {
					return &queueError{fmt.Errorf("mqtt: read pending records after seq %d: %w", sent, err)}
				}
				if len(buf) == 0 {
					break
				}
				changed = nil
			}
			rec := buf[0]
			buf = buf[1:]
			sent = rec.Seq
			r, err := attest.Decode(rec.Data)
			if err != nil {
				// No collector would receipt it; holding it would stall the
				// outbox for good. Say so loudly and count it as delivered.
				u.log.Error("mqtt: outbox record does not decode; not publishing it", "seq", rec.Seq, "err", err)
				if len(fl) == 0 {
					done = rec.Seq
				}
				continue
			}
			fl = append(fl, rflight{seq: rec.Seq, chain: r.Claims.Chain, data: rec.Data})
			publish(&fl[len(fl)-1])
		}
		if len(buf) == 0 {
			buf = nil
		}
		// Re-send what has waited too long without enough receipts.
		now := time.Now()
		for i := range fl {
			f := &fl[i]
			if now.Sub(f.sentAt) >= u.resendDelay(f.tries) && count(f) < u.c.MinReceipts {
				publish(f)
			}
		}
		u.update(func(s *Status) { s.InFlight = len(fl) })

		select {
		case <-ctx.Done():
			return flush()
		case err := <-lost:
			_ = flush()
			return fmt.Errorf("mqtt: %w: %w", ErrConnectionLost, err)
		case r := <-rc:
			apply(r)
			for more := true; more; {
				select {
				case r := <-rc:
					apply(r)
				default:
					more = false
				}
			}
		case <-changed:
		case <-tick.C:
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// resendDelay is ResendAfter doubled per earlier attempt, capped at ResendMax.
func (u *Uplink) resendDelay(tries int) time.Duration {
	d := u.c.ResendAfter
	for i := 1; i < tries && d < u.c.ResendMax; i++ {
		d *= 2
	}
	return min(d, u.c.ResendMax)
}
