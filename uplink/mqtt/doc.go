// Package mqtt ships signed records from the outbox to an MQTT broker, and
// receives them on the collector side.
//
// The Uplink publishes records in seq order as binary COSE payloads on
// {prefix}/{device_id}/att/{kind} (or {prefix}/{device_id}/att with
// Opts.SingleTopic, the layout before per-kind topics; docs/consumers.md)
// at QoS 1 with a bounded window in flight, and acks
// the queue cumulatively only up to the highest seq below which every record
// has been PUBACKed. The bbolt outbox is the only durable copy: paho runs with
// its memory store and a fresh client per connection, and after any reconnect
// or restart everything still unacked is published again (at-least-once;
// receivers dedupe by (kid, chain, seq)). A retained status document on
// {prefix}/{device_id}/status says "online" on connect and "offline" as the
// Last Will and on clean shutdown. The agent subscribes to nothing but, with
// Opts.Collectors, its receipt topic. The delivery loop is uplink.Window;
// this package supplies the PUBLISH, what confirms it (the PUBACK, or the
// collectors' receipts) and the DUP re-send on the same connection.
//
// The Subscriber is the receive side for edge-collector: a persistent
// session (CleanSession=false, fixed client id) on {prefix}/+/att/# (both
// layouts: "#" also matches its parent level) that acks a
// message only after the callback succeeded, so the broker redelivers the rest.
//
// Concurrency: Run is called once per Uplink or Subscriber and owns every
// goroutine it starts; it uses its Queue from that one goroutine only. Status
// is safe to call from any goroutine at any time.
package mqtt
