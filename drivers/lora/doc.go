// Package lora witnesses LoRa radio traffic and emits one drivers.KindLoRaRX
// observation per frame received with a good CRC, drivers.KindLoRaStat
// observations from the gateway's own status reports, and one
// drivers.KindLoRaTX per downlink a network server had the gateway send.
//
// Dev has three modes (Opts.Mode):
//
//   - udp: a Semtech UDP packet forwarder server (GWMP v1 and v2, codec in
//     subpackage gwmp), the interface of every SX1301/SX1302 hotspot. With
//     Opts.Upstreams it is a multiplexer: every datagram from a gateway is
//     relayed byte for byte to each upstream that serves that gateway, over
//     one socket per (gateway, upstream); each upstream's PULL_RESP goes to
//     the gateway from the listen socket (the address it pulls from), with
//     the token remapped when another upstream's pending downlink holds it;
//     the TX_ACK goes back to that upstream with its own token. Upstream
//     acks are counted (ack ratio), not relayed: the agent acknowledges the
//     gateway itself. An upstream name is resolved in the background with
//     backoff; ICMP unreachable and silence are shown per upstream; none of
//     it delays the other upstreams or attestation. Without upstreams it is
//     a tap: acknowledge, attest, send nothing else.
//   - concentratord: a read-only subscriber of ChirpStack Concentratord's
//     ZeroMQ event socket (subpackage zmtp; protobuf gw.Event decoded by
//     subpackage chirpstack). The command socket is never opened.
//   - mqtt: a read-only subscriber of a ChirpStack Gateway Bridge / MQTT
//     Forwarder's {topic}/gateway/+/event/{up,stats}, protobuf or JSON.
//
// Single-channel boards with an SX127x radio on SPI are read by subpackage
// sx127x, which emits the same observations.
//
// Evidence rules: a frame is attested only when the forwarder reports
// stat = 1 (CRC_OK); CRC errors and frames without CRC are counted per
// gateway, never attested. RSSI and SNR outside physical ranges refuse the
// frame; stat fields outside them are dropped from the record; a counter the
// gateway did not send stays absent. Each is counted by reason
// (Stats.Malformed). For protocol v2 "rsig" reports, the record's RSSI and
// SNR are those of the antenna with the strongest channel RSSI. Frequencies
// are converted from the decimal MHz text, never through a float.
//
// The gateway table is bounded: at most Opts.MaxGateways entries (new EUIs
// beyond are counted and ignored, with their datagrams), silent gateways
// expire after Opts.GatewayExpiry, and Opts.Gateways restricts it to known
// EUIs.
//
// Delivery (udp): one reader goroutine acknowledges each PUSH_DATA and
// PULL_DATA on receipt (an undecodable PUSH_DATA body is not acknowledged,
// so the forwarder's ack statistics show the fault, but it is still relayed),
// relays it, routes TX_ACKs, and queues PUSH_DATA for the worker goroutine,
// which decodes, attests and calls emit. The queue holds a 20,000-datagram
// burst while the pipeline is slow; beyond it the kernel socket buffer
// (Opts.ReceiveBuffer) takes over, and what the kernel drops is counted
// (SO_RXQ_OVFL per datagram, SO_MEMINFO every second). A janitor goroutine
// times out downlinks whose TX_ACK never came (their lora.tx says so) and
// expires gateways.
//
// Concurrency: call Run at most once per Dev. Stats, Send and Probe are safe
// from any goroutine while Run runs. Send needs Run running (it shares the
// socket). Every observation is emitted from one goroutine.
package lora
