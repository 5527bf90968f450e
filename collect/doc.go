// Package collect is the network side of edge-agent: it receives devices'
// signed records from the gossip network (and an MQTT broker when one is
// configured, as one member of a shared subscription if asked), verifies
// each one with attest, admits it by the operator's policy (allow-list,
// per-device rate and quota, known devices first), dedupes by (device,
// chain, seq), keeps two payloads for one seq as fork evidence, stores what
// it accepted durably in a Store and answers with signed receipts (gossip
// and MQTT), so a device deletes a record only once a trusted collector
// holds it.
//
// Stores: the embedded bbolt file here; PostgreSQL in collect/pgstore.
// Only cmd/edge-collector links this package (with collect/pgstore and
// collect/collectmetrics): the device binary edge-agent does not, so it
// stays within its size budget (its `collect` command execs edge-collector).
//
// A Collector owns its store and its libp2p node; its methods are safe for
// concurrent use. Records pass through one writer goroutine, so storage
// order is intake order.
package collect
