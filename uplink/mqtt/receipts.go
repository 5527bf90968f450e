package mqtt

import (
	"context"
	"fmt"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edge-agent/edge-agent/uplink"
)

// receiptTopic is where collectors answer this device.
func (u *Uplink) receiptTopic() string { return u.c.TopicPrefix + "/" + u.c.DeviceID + "/receipt" }

// subscribeReceipts takes receipts from trusted collectors into the
// delivery window, which acks the queue up to the highest seq below which
// every record has MinReceipts of them. Anything else is counted as
// refused.
func (u *Uplink) subscribeReceipts(ctx context.Context, client paho.Client, lost <-chan error) error {
	trusted := make(map[string]bool, len(u.c.Collectors))
	for _, c := range u.c.Collectors {
		trusted[c] = true
	}
	onReceipt := func(_ paho.Client, m paho.Message) {
		r, err := u.c.OpenReceipt(m.Payload())
		if err != nil || r.Device != u.c.DeviceID || !trusted[r.Collector] {
			u.update(func(s *Status) { s.ReceiptsRefused++ })
			u.log.Debug("mqtt: receipt refused", "err", err)
			return
		}
		// When the window is behind, the receipt is dropped: the record is
		// re-sent and receipted again.
		if u.w.Receive(uplink.Receipt{Collector: r.Collector, Chains: r.Chains}) {
			now := u.c.Now()
			u.update(func(s *Status) { s.LastReceipt, s.LastReceiptBy = now, r.Collector })
		}
	}
	topic := u.receiptTopic()
	if err := waitToken(ctx, client.Subscribe(topic, 1, onReceipt), u.c.ConnectTimeout, lost); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("mqtt: subscribe %s: %w", topic, err)
	}
	return nil
}
