// Package p2p ships signed records over libp2p gossipsub and carries the
// collectors' receipts back; package collect is the receiving side.
//
// # Network
//
// Every node — device or collector — is a libp2p host assembled from parts
// (TCP, Noise, Yamux, a resource manager and a connection manager; no QUIC,
// WebRTC, WebTransport, mDNS, relay or NAT traversal, which would add about
// 8 MiB to the arm64 binary) that speaks identify (identify.go, written on
// protowire) and ping, so any standard libp2p node — go, rust or js — can
// gossip with it; docs/interop.md is the contract for those. A device's host
// key is its attestation key, so its peer ID is its device id (HostKey
// checks they agree). Nodes dial their bootstrap peers and redial them with
// jittered exponential backoff.
//
// Two gossipsub topics per network, both with strict message signing and
// message id = SHA-256 of the data:
//
//	edge-agent/<network>/att/1   records (COSE_Sign1 bytes)
//	edge-agent/<network>/rcpt/1  receipts (see Receipt)
//
// Every node validates before delivering or forwarding. A record must decode
// (attest.Decode: canonical envelope and payload, size limits) and its
// signature must verify, else it is rejected, which lowers the sending peer's
// score (see scoreParams). A valid record stamped more than MaxClockSkew in
// the future, or from a device outside an allow-list, is ignored: dropped
// without blame, since a device clock may simply be wrong.
//
// The gossip author (From) of a record is not required to be the device that
// signed it. The record's signature is the proof; gossip signing only names
// the peer that injected a message, for scoring. So gateways may carry
// records for devices without their own connectivity, and a replayed record
// is harmless: receivers dedupe by (device, chain, seq).
//
// # Acknowledged delivery
//
// A collector stores records durably (fsync), then gossips a Receipt signed
// by its own key naming (device, chain, seq ranges) it holds, duplicates
// included. The Uplink trusts receipts only from the configured collector
// peer ids and acks the outbox up to the highest seq below which every
// record has MinReceipts distinct trusted receipts. Until then records stay
// in the outbox, at most Window in flight, and are sent again after
// ResendAfter, doubling to ResendMax: straight to each connected trusted
// collector still missing them that speaks DirectProtocol (identify says
// which do), since gossip drops a repeat of bytes it has seen (message id =
// SHA-256 of the record) for SeenTTL plus up to a minute (pubsub sweeps its
// seen cache once a minute); over gossip when none of those collectors is
// connected. Records go out only once the receipt topic's mesh has a peer
// (or none of the peers takes receipts, or after meshWait), since a
// standard gossipsub publishes a collector's receipt to its mesh only. The
// window, re-send timing and receipt coverage are uplink.Window's; this
// package supplies gossip, the direct re-send and the receipts.
//
// Concurrency: Node and Uplink methods are safe for concurrent use. A Node's
// validators run concurrently on gossipsub's goroutines and keep only atomic
// counters; OnRecord and OnReceipt are each called from one goroutine. Run
// owns every goroutine it starts and waits for them before returning.
package p2p
