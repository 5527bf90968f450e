package lora

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/lora/gwmp"
)

// TxPacket is one frame for a gateway to transmit (a PULL_RESP "txpk").
type TxPacket = gwmp.TXPK

// Sizing of the default receive buffer. A PUSH_DATA with one rxpk is 250-450
// bytes; the kernel charges each queued datagram its skb truesize, measured
// at 1280 bytes for such datagrams on Linux loopback and Ethernet (amd64 and
// arm64). 20,000 of them need 25.6 MB; the default rounds up to 32 MiB so a
// burst of that size, the stated design load, fits while Run is blocked.
const (
	burstDatagrams       = 20_000
	datagramTruesize     = 1280
	DefaultReceiveBuffer = 32 << 20
)

// Opts configures a Dev. Start from DefaultOpts; zero values mean defaults.
type Opts struct {
	// Listen is the UDP address the forwarders send to (their
	// server_address and serv_port_up/serv_port_down).
	Listen string
	// ReceiveBuffer is the socket receive buffer wanted, in bytes as the
	// kernel accounts them (what getsockopt(SO_RCVBUF) reports).
	ReceiveBuffer int
	// IncludePayload puts the PHY payload itself in each lora.rx record,
	// not only its SHA-256.
	IncludePayload bool
	// StatInterval is the minimum time between two lora.stat records from
	// the same gateway; reports in between are counted and dropped.
	StatInterval time.Duration
	// TxAckTimeout bounds how long Send waits for a v2 gateway's TX_ACK
	// when ctx has no earlier deadline.
	TxAckTimeout time.Duration
	// Logger receives the driver's logs; a "component" attribute is added.
	Logger *slog.Logger
	// Now stamps observations and tracks gateway liveness.
	Now func() time.Time
	// Token returns PULL_RESP tokens; nil means math/rand/v2.
	Token func() uint16

	// noForce skips SO_RCVBUFFORCE, as an unprivileged daemon would; tests
	// use it to exercise the rmem_max path as root.
	noForce bool
}

// DefaultOpts returns the defaults: the forwarders' conventional port on
// loopback, a 32 MiB buffer, at most one lora.stat per gateway per 30 s.
func DefaultOpts() Opts {
	return Opts{
		Listen:        "127.0.0.1:1680",
		ReceiveBuffer: DefaultReceiveBuffer,
		StatInterval:  30 * time.Second,
		TxAckTimeout:  5 * time.Second,
	}
}

// Stat is the Data of a lora.stat observation: one gateway status report.
// The first six fields are the forwarder's counters since its previous
// report (PROTOCOL.TXT §4); Gateway and TimeUnixNano are added here.
type Stat struct {
	Gateway      string   `cbor:"gw"`             // gateway EUI, 16 hex digits
	RXNb         uint32   `cbor:"rxnb"`           // frames received
	RXOK         uint32   `cbor:"rxok"`           // ... with a good CRC
	RXFW         uint32   `cbor:"rxfw"`           // ... forwarded
	ACKR         float64  `cbor:"ackr"`           // % of upstream datagrams acknowledged
	DWNb         uint32   `cbor:"dwnb"`           // downlinks received
	TXNb         uint32   `cbor:"txnb"`           // frames transmitted
	Temp         *float64 `cbor:"temp,omitempty"` // concentrator temperature, °C
	Lati         *float64 `cbor:"lati,omitempty"` // degrees, as the forwarder reported
	Long         *float64 `cbor:"long,omitempty"` // degrees
	Alti         *float64 `cbor:"alti,omitempty"` // metres
	TimeUnixNano int64    `cbor:"time,omitempty"` // the gateway's clock at the report, Unix ns; absent when unparsable
}

// GatewayStats is one gateway's state as the server sees it.
type GatewayStats struct {
	EUI      string
	Version  uint8          // protocol version of its last datagram
	Addr     netip.AddrPort // source of its last PUSH_DATA
	PullAddr netip.AddrPort // source of its last PULL_DATA: where downlinks go
	LastSeen time.Time
	LastPull time.Time
	// PullAge is the time since the last PULL_DATA keep-alive (forwarders
	// send one every keepalive_interval, 10 s by default); 0 if none yet.
	PullAge   time.Duration
	RxOK      uint64 // frames attested
	RxBadCRC  uint64 // stat -1: counted, not attested
	RxNoCRC   uint64 // stat 0 or absent: counted, not attested
	RxInvalid uint64 // rxpk that could not be decoded or lacked a required field
	TmstWraps uint64 // times its tmst counter wrapped past 2^32
	Stats     uint64 // stat reports received
	TxSent    uint64
	TxAcked   uint64
	TxFailed  uint64 // rejected or unanswered
}

// Stats is a snapshot of a Dev's counters, for status and doctor.
type Stats struct {
	Listen string
	// ReceiveBuffer is what the kernel granted (SO_RCVBUF read back), bytes.
	ReceiveBuffer int
	Datagrams     uint64
	RxOK          uint64
	RxBadCRC      uint64
	RxNoCRC       uint64
	RxInvalid     uint64
	StatEmitted   uint64
	StatSkipped   uint64 // stat reports inside StatInterval
	// SocketDrops is the kernel's count of datagrams dropped on the socket
	// because the receive buffer was full. DropsCounted is false where the
	// OS does not report it.
	SocketDrops  uint64
	DropsCounted bool
	// Malformed counts refused datagrams (and rxpk/stat objects) by reason:
	// short, too_large, version, identifier, json, direction, rxpk, stat.
	Malformed map[string]uint64
	Gateways  []GatewayStats // sorted by EUI
}

// Dev is one packet forwarder server.
type Dev struct {
	name string
	o    Opts
	log  *slog.Logger

	mu        sync.Mutex
	conn      *net.UDPConn
	gws       map[gwmp.EUI]*gateway
	pending   map[uint16]chan<- txResult
	stats     Stats
	malformed map[string]uint64

	// Owned by the Run goroutine.
	badLog  *logLimiter
	dropLog *logLimiter
}

type gateway struct {
	GatewayStats
	lastTmst     uint32
	haveTmst     bool
	lastStatEmit time.Time
}

type txResult struct {
	eui gwmp.EUI
	ack *gwmp.TxAckBody
}

var (
	_ drivers.Driver = (*Dev)(nil)
	_ drivers.Prober = (*Dev)(nil)
)

// New validates o (nil means DefaultOpts) and returns a Dev. It opens no
// socket: Run does.
func New(name string, o *Opts) (*Dev, error) {
	if name == "" {
		return nil, fmt.Errorf("lora: new: missing driver name: %w", ErrInvalidOption)
	}
	def := DefaultOpts()
	var opts Opts
	if o != nil {
		opts = *o
	}
	if opts.Listen == "" {
		opts.Listen = def.Listen
	}
	if _, _, err := net.SplitHostPort(opts.Listen); err != nil {
		return nil, fmt.Errorf("lora: new %s: listen %q: want host:port: %w", name, opts.Listen, ErrInvalidOption)
	}
	if opts.ReceiveBuffer == 0 {
		opts.ReceiveBuffer = def.ReceiveBuffer
	}
	if opts.ReceiveBuffer < 0 || opts.ReceiveBuffer > 1<<30 {
		return nil, fmt.Errorf("lora: new %s: receive buffer %d bytes: want 1 B to 1 GiB: %w", name, opts.ReceiveBuffer, ErrInvalidOption)
	}
	if opts.StatInterval == 0 {
		opts.StatInterval = def.StatInterval
	}
	if opts.TxAckTimeout == 0 {
		opts.TxAckTimeout = def.TxAckTimeout
	}
	if opts.StatInterval < 0 || opts.TxAckTimeout < 0 {
		return nil, fmt.Errorf("lora: new %s: negative interval: %w", name, ErrInvalidOption)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Token == nil {
		opts.Token = func() uint16 { return uint16(rand.Uint32()) }
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Dev{
		name:      name,
		o:         opts,
		log:       lg.With("component", "lora", "driver", name),
		gws:       map[gwmp.EUI]*gateway{},
		pending:   map[uint16]chan<- txResult{},
		malformed: map[string]uint64{},
		badLog:    newLogLimiter(0.2, 5),
		dropLog:   newLogLimiter(0.1, 1),
		stats:     Stats{Listen: opts.Listen, DropsCounted: dropsSupported},
	}, nil
}

// Name returns the instance name; it is Observation.Source.
func (d *Dev) Name() string { return d.name }

// Addr returns the bound address while Run runs (useful with port 0).
func (d *Dev) Addr() (netip.AddrPort, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		return netip.AddrPort{}, false
	}
	return d.conn.LocalAddr().(*net.UDPAddr).AddrPort(), true
}

// Stats returns a snapshot of the counters. Safe from any goroutine.
func (d *Dev) Stats() Stats {
	now := d.o.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Malformed = make(map[string]uint64, len(d.malformed))
	for k, v := range d.malformed {
		s.Malformed[k] = v
	}
	s.Gateways = make([]GatewayStats, 0, len(d.gws))
	for _, g := range d.gws {
		gs := g.GatewayStats
		if !gs.LastPull.IsZero() {
			gs.PullAge = now.Sub(gs.LastPull)
		}
		s.Gateways = append(s.Gateways, gs)
	}
	sort.Slice(s.Gateways, func(i, j int) bool { return s.Gateways[i].EUI < s.Gateways[j].EUI })
	return s
}

// Probe checks that the listen address can be bound. While Run holds it,
// the answer is Loaded.
func (d *Dev) Probe(ctx context.Context) (drivers.Probe, error) {
	d.mu.Lock()
	running := d.conn != nil
	d.mu.Unlock()
	if running {
		return drivers.Loaded, nil
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", d.o.Listen)
	if err != nil {
		return drivers.Failed, d.bindError("probe", err)
	}
	_ = pc.Close()
	return drivers.Loaded, nil
}

func (d *Dev) bindError(op string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("lora: %s %s: another packet forwarder server is running on %s (find it with: ss -ulpn 'sport = :%s'); stop it or change listen: %w",
			op, d.name, d.o.Listen, port(d.o.Listen), ErrAddrInUse)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("lora: %s %s: listen %s: permission denied; use a port above 1023: %w", op, d.name, d.o.Listen, err)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("lora: %s %s: listen %s: no local interface has this address; use 127.0.0.1 or 0.0.0.0: %w", op, d.name, d.o.Listen, err)
	}
	return fmt.Errorf("lora: %s %s: listen %s: %w", op, d.name, d.o.Listen, err)
}

func port(hostport string) string {
	_, p, _ := net.SplitHostPort(hostport)
	return p
}

// Run serves forwarders until ctx is done. It returns nil on cancellation
// and an error when the address cannot be bound or emit fails.
func (d *Dev) Run(ctx context.Context, emit drivers.Emit) error {
	conn, err := d.listen(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	if d.conn != nil {
		d.mu.Unlock()
		_ = conn.Close()
		return fmt.Errorf("lora: run %s: %w", d.name, ErrRunning)
	}
	d.conn = conn
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.conn = nil
		d.mu.Unlock()
		_ = conn.Close()
	}()
	// Closing the socket is the only way to interrupt a blocked read.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	buf := make([]byte, gwmp.MaxDatagram+1) // +1 detects oversize datagrams
	oob := make([]byte, oobSize)
	for {
		n, oobn, _, from, err := conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("lora: run %s: read: %w", d.name, err)
		}
		now := d.o.Now()
		if oobn > 0 {
			d.noteDrops(oob[:oobn], now)
		}
		if err := d.handle(ctx, conn, emit, buf[:n], from.Addr().Unmap(), from, now); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("lora: run %s: emit: %w", d.name, err)
		}
	}
}

func (d *Dev) listen(ctx context.Context) (*net.UDPConn, error) {
	var res sockResult
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		res = setupSocket(c, d.o.ReceiveBuffer, !d.o.noForce)
		return nil
	}}
	pc, err := lc.ListenPacket(ctx, "udp", d.o.Listen)
	if err != nil {
		return nil, d.bindError("run", err)
	}
	if res.err != nil {
		d.log.Warn("could not set socket options; bursts may be dropped", "err", res.err)
	}
	d.mu.Lock()
	d.stats.ReceiveBuffer = res.granted
	d.mu.Unlock()
	if res.granted < d.o.ReceiveBuffer {
		d.log.Warn("receive buffer smaller than configured: a burst may be dropped (counted in stats)",
			"wanted_bytes", d.o.ReceiveBuffer, "granted_bytes", res.granted,
			"burst_datagrams", res.granted/datagramTruesize,
			"fix", fmt.Sprintf("run the daemon with CAP_NET_ADMIN, or raise the cap: sysctl -w net.core.rmem_max=%d (persist in /etc/sysctl.d/)", d.o.ReceiveBuffer/2),
			"rmem_max", readRmemMax())
	} else {
		d.log.Debug("listening", "addr", pc.LocalAddr(), "receive_buffer", res.granted, "forced", res.forced)
	}
	return pc.(*net.UDPConn), nil
}

func readRmemMax() string {
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func (d *Dev) noteDrops(oob []byte, now time.Time) {
	n, ok := parseDrops(oob)
	if !ok {
		return
	}
	d.mu.Lock()
	prev := d.stats.SocketDrops
	if uint64(n) > prev {
		d.stats.SocketDrops = uint64(n)
	}
	granted := d.stats.ReceiveBuffer
	d.mu.Unlock()
	if uint64(n) > prev {
		if ok, sup := d.dropLog.allow(now); ok {
			d.log.Warn("kernel dropped packet forwarder datagrams: the socket buffer was full; raise receive_buffer or speed up the pipeline",
				"dropped_total", n, "receive_buffer", granted, "suppressed", sup)
		}
	}
}

// malformedReason maps a decode error to its Stats.Malformed key.
func malformedReason(err error) string {
	switch {
	case errors.Is(err, gwmp.ErrTooLarge):
		return "too_large"
	case errors.Is(err, gwmp.ErrShort):
		return "short"
	case errors.Is(err, gwmp.ErrVersion):
		return "version"
	case errors.Is(err, gwmp.ErrIdentifier):
		return "identifier"
	case errors.Is(err, gwmp.ErrJSON), errors.Is(err, gwmp.ErrField):
		return "json"
	}
	return "other"
}

func (d *Dev) badDatagram(reason string, from netip.AddrPort, err error, now time.Time) {
	d.mu.Lock()
	d.malformed[reason]++
	d.mu.Unlock()
	if ok, sup := d.badLog.allow(now); ok {
		d.log.Warn("malformed packet forwarder datagram ignored", "reason", reason, "from", from, "err", err, "suppressed", sup)
	}
}

// handle processes one datagram. It returns only emit's error.
func (d *Dev) handle(ctx context.Context, conn *net.UDPConn, emit drivers.Emit, b []byte, _ netip.Addr, from netip.AddrPort, now time.Time) error {
	d.mu.Lock()
	d.stats.Datagrams++
	d.mu.Unlock()
	p, err := gwmp.Decode(b)
	if err != nil {
		// A PUSH_DATA whose header is fine but JSON is not is still
		// acknowledged: the forwarder would only resend the same bytes.
		if len(b) >= 12 && (b[0] == gwmp.Version1 || b[0] == gwmp.Version2) && gwmp.Identifier(b[3]) == gwmp.PushData {
			d.ack(conn, b[0], b[1], b[2], gwmp.PushAck, from, now)
		}
		d.badDatagram(malformedReason(err), from, err, now)
		return nil
	}
	switch p.ID {
	case gwmp.PushData:
		d.ack(conn, p.Version, b[1], b[2], gwmp.PushAck, from, now)
		return d.push(ctx, emit, p, from, now)
	case gwmp.PullData:
		// Record the downlink path before acking: once the gateway holds its
		// PULL_ACK, a Send for it must find the path.
		d.mu.Lock()
		g := d.gateway(p.EUI)
		g.Version, g.PullAddr, g.LastPull, g.LastSeen = p.Version, from, now, now
		d.mu.Unlock()
		d.ack(conn, p.Version, b[1], b[2], gwmp.PullAck, from, now)
	case gwmp.TxAck:
		d.mu.Lock()
		ch, ok := d.pending[p.Token]
		if ok {
			delete(d.pending, p.Token)
		}
		g := d.gateway(p.EUI)
		g.LastSeen = now
		d.mu.Unlock()
		if !ok {
			d.badDatagram("tx_ack_unknown_token", from, fmt.Errorf("lora: TX_ACK token %d matches no pending PULL_RESP", p.Token), now)
			return nil
		}
		ch <- txResult{eui: p.EUI, ack: p.Ack} // buffered, never blocks
	default:
		d.badDatagram("direction", from, fmt.Errorf("lora: %v is sent by servers, not gateways", p.ID), now)
	}
	return nil
}

func (d *Dev) ack(conn *net.UDPConn, version, t0, t1 byte, id gwmp.Identifier, to netip.AddrPort, now time.Time) {
	a := [4]byte{version, t0, t1, byte(id)}
	if _, err := conn.WriteToUDPAddrPort(a[:], to); err != nil {
		if ok, sup := d.badLog.allow(now); ok {
			d.log.Warn("could not acknowledge datagram", "to", to, "ack", id, "err", err, "suppressed", sup)
		}
	}
}

// gateway returns the entry for eui, creating it. d.mu must be held.
func (d *Dev) gateway(eui gwmp.EUI) *gateway {
	g, ok := d.gws[eui]
	if !ok {
		g = &gateway{GatewayStats: GatewayStats{EUI: eui.String()}}
		d.gws[eui] = g
	}
	return g
}

func (d *Dev) push(ctx context.Context, emit drivers.Emit, p gwmp.Packet, from netip.AddrPort, now time.Time) error {
	d.mu.Lock()
	g := d.gateway(p.EUI)
	g.Version, g.Addr, g.LastSeen = p.Version, from, now
	eui := g.EUI
	d.mu.Unlock()
	for _, err := range p.Push.Invalid {
		d.countInvalid(g, "rxpk", from, err, now)
	}
	for i := range p.Push.RXPK {
		rx, v, err := d.frame(&p.Push.RXPK[i], eui)
		d.mu.Lock()
		switch v {
		case verdictOK:
			g.RxOK++
			d.stats.RxOK++
			if rx.Tmst < g.lastTmst && g.haveTmst && g.lastTmst-rx.Tmst > 1<<31 {
				g.TmstWraps++
			}
			g.lastTmst, g.haveTmst = rx.Tmst, true
		case verdictBadCRC:
			g.RxBadCRC++
			d.stats.RxBadCRC++
		case verdictNoCRC:
			g.RxNoCRC++
			d.stats.RxNoCRC++
		}
		d.mu.Unlock()
		if v == verdictInvalid {
			d.countInvalid(g, "rxpk", from, err, now)
			continue
		}
		if v != verdictOK {
			continue
		}
		if err := emit(ctx, drivers.Observation{Kind: drivers.KindLoRaRX, Source: d.name, Time: now, Data: rx}); err != nil {
			return err
		}
	}
	if p.Push.StatErr != nil {
		d.countInvalid(nil, "stat", from, p.Push.StatErr, now)
	}
	if st := p.Push.Stat; st != nil {
		d.mu.Lock()
		g.Stats++
		due := g.lastStatEmit.IsZero() || now.Sub(g.lastStatEmit) >= d.o.StatInterval
		if due {
			g.lastStatEmit = now
			d.stats.StatEmitted++
		} else {
			d.stats.StatSkipped++
		}
		d.mu.Unlock()
		if due {
			if err := emit(ctx, drivers.Observation{Kind: drivers.KindLoRaStat, Source: d.name, Time: now, Data: statObs(st, eui)}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Dev) countInvalid(g *gateway, reason string, from netip.AddrPort, err error, now time.Time) {
	d.mu.Lock()
	if g != nil {
		g.RxInvalid++
		d.stats.RxInvalid++
	}
	d.malformed[reason]++
	d.mu.Unlock()
	if ok, sup := d.badLog.allow(now); ok {
		d.log.Warn("invalid "+reason+" ignored", "from", from, "err", err, "suppressed", sup)
	}
}

func statObs(st *gwmp.Stat, eui string) Stat {
	s := Stat{
		Gateway: eui, RXNb: st.RXNb, RXOK: st.RXOK, RXFW: st.RXFW, ACKR: st.ACKR,
		DWNb: st.DWNb, TXNb: st.TXNb, Temp: st.Temp, Lati: st.Lati, Long: st.Long, Alti: st.Alti,
	}
	if t, err := st.Time.Time(); err == nil {
		s.TimeUnixNano = t.UnixNano()
	}
	return s
}

// Send transmits pk through the gateway (a PULL_RESP to the address of its
// last PULL_DATA) and, for protocol v2 gateways, waits for the TX_ACK and
// returns its verdict: nil, a *TxError (matching ErrTxRejected), or
// ErrTxAckTimeout. Protocol v1 has no TX_ACK, so Send returns once the
// datagram is sent. pk.Size is set from pk.Data.
func (d *Dev) Send(ctx context.Context, gatewayEUI gwmp.EUI, pk TxPacket) error {
	eui := gatewayEUI.String()
	pk.Size = uint16(len(pk.Data))
	ch := make(chan txResult, 1)
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
	var token uint16
	if version >= gwmp.Version2 {
		for {
			token = d.o.Token()
			if _, busy := d.pending[token]; !busy {
				break
			}
		}
		d.pending[token] = ch
	}
	g.TxSent++
	d.mu.Unlock()
	unpend := func() {
		d.mu.Lock()
		delete(d.pending, token)
		d.mu.Unlock()
	}
	fail := func() {
		d.mu.Lock()
		g.TxFailed++
		d.mu.Unlock()
	}

	b, err := gwmp.Encode(gwmp.Packet{Header: gwmp.Header{Version: version, Token: token, ID: gwmp.PullResp}, Pull: &gwmp.PullRespBody{TXPK: pk}})
	if err == nil {
		_, err = conn.WriteToUDPAddrPort(b, to)
	}
	if err != nil {
		unpend()
		fail()
		return fmt.Errorf("lora: send to %s: %w", eui, err)
	}
	if version < gwmp.Version2 {
		return nil
	}
	timer := time.NewTimer(d.o.TxAckTimeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.ack == nil || r.ack.TxpkAck.Error == "" || r.ack.TxpkAck.Error == "NONE" {
			d.mu.Lock()
			g.TxAcked++
			d.mu.Unlock()
			if r.ack != nil && r.ack.TxpkAck.Warn != "" {
				d.log.Warn("gateway changed the transmission", "gateway", eui, "warn", r.ack.TxpkAck.Warn, "value", r.ack.TxpkAck.Value)
			}
			return nil
		}
		fail()
		return &TxError{Gateway: eui, Code: r.ack.TxpkAck.Error}
	case <-timer.C:
		unpend()
		fail()
		return fmt.Errorf("lora: send to %s: %w within %v; check that the forwarder speaks protocol v2 and that its downlink port reaches this host", eui, ErrTxAckTimeout, d.o.TxAckTimeout)
	case <-ctx.Done():
		unpend()
		fail()
		return fmt.Errorf("lora: send to %s: %w", eui, ctx.Err())
	}
}
