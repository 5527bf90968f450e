// Package collect is the network side of edge-agent: it receives devices'
// signed records from the gossip network (and an MQTT broker when one is
// configured), verifies each one with attest, dedupes by (device, chain,
// seq), keeps two payloads for one seq as fork evidence, stores what it
// accepted durably and answers with signed receipts, so a device deletes a
// record only once a trusted collector holds it.
//
// A Collector owns its database and its libp2p node; its methods are safe
// for concurrent use. Records pass through one writer goroutine, so storage
// order is intake order.
package collect
