// Package lora witnesses LoRa radio traffic and emits one drivers.KindLoRaRX
// observation per frame received with a good CRC, plus drivers.KindLoRaStat
// observations from the gateway's own status reports.
//
// Dev is a server for the Semtech UDP packet forwarder protocol (GWMP v1 and
// v2, codec in subpackage gwmp), the interface every SX1301/SX1302 hotspot's
// forwarder speaks: point the forwarder's serv_port_up/serv_port_down at
// Opts.Listen. Several gateways (EUIs) may share one server. Single-channel
// boards with an SX127x radio on SPI are read by subpackage sx127x, which
// emits the same observations.
//
// Evidence rules: a frame is attested only when the forwarder reports
// stat = 1 (CRC checked and good); stat -1 (CRC error) and 0 (no CRC) are
// counted per gateway, never attested. For protocol v2 reports with a "rsig"
// array (one entry per antenna), the record's RSSI and SNR are those of the
// antenna with the strongest channel RSSI (rssic; rssis when rssic is
// absent), and chan/rfch stay those of the rxpk itself. Frequencies are
// converted from the decimal MHz text, never through a float.
//
// Delivery: datagrams are handled in arrival order by the single goroutine
// that runs Run. PUSH_ACK and PULL_ACK are sent as soon as a datagram's
// header is valid, before its frames are emitted. Emit blocks while the
// pipeline is full; meanwhile the kernel socket buffer, sized by
// Opts.ReceiveBuffer, absorbs the burst, and any datagram the kernel still
// drops is counted (Linux SO_RXQ_OVFL) in Stats.SocketDrops and logged.
//
// Concurrency: call Run at most once per Dev. Stats, Send and Probe are safe
// from any goroutine while Run runs. Send needs Run running (it shares the
// socket), and its TX_ACK is read by Run, so a Send waits while Run is
// blocked on a full pipeline.
package lora
