package lora

import (
	"context"
	"encoding/json"
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
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/edge-agent/edge-agent/clock"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/lora/gwmp"
	"github.com/edge-agent/edge-agent/ratelog"
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

// Modes: where the driver reads the concentrator's traffic.
const (
	ModeUDP           = "udp"           // Semtech UDP packet forwarder: multiplexer or tap
	ModeConcentratord = "concentratord" // ChirpStack Concentratord ZeroMQ event socket, read-only
	ModeMQTT          = "mqtt"          // ChirpStack Gateway Bridge / MQTT Forwarder events on a broker
)

// DefaultListen is the udp mode's default address. It is neither 1680
// (Helium gateway-rs, and the forwarders' own default) nor 1700 (ChirpStack
// Gateway Bridge, TTN and most network servers), so the agent can sit
// between the forwarder and either on the same host.
const DefaultListen = "127.0.0.1:1690"

// Upstream is one network server the udp multiplexer forwards to.
type Upstream struct {
	// Name identifies the upstream in status, logs and lora.tx records;
	// "" means Addr.
	Name string
	// Addr is host:port of the server's Semtech UDP port. A host name is
	// resolved in the background and re-resolved every few minutes.
	Addr string
	// UplinkOnly: forward uplinks to it, never relay its downlinks.
	UplinkOnly bool
	// Gateways, when set, limits this upstream to these gateway EUIs.
	Gateways []gwmp.EUI
}

// MQTTOpts configures mode mqtt.
type MQTTOpts struct {
	Server    string // tcp://host:port of the broker the gateway bridge publishes to
	Topic     string // topic prefix, usually the region ("eu868"): {Topic}/gateway/+/event/up
	Marshaler string // "protobuf" or "json", as the bridge's marshaler setting
	ClientID  string // "" means edge-agent-<driver name>
	Username  string
	Password  string
}

// Opts configures a Dev. Start from DefaultOpts; zero values mean defaults.
type Opts struct {
	// Mode is ModeUDP (""), ModeConcentratord or ModeMQTT.
	Mode string

	// Listen is the UDP address the forwarders send to (their
	// server_address and serv_port_up/serv_port_down).
	Listen string
	// Upstreams are the network servers the forwarder's traffic is
	// relayed to. None means tap mode: acknowledge, attest, never transmit.
	Upstreams []Upstream
	// ReceiveBuffer is the socket receive buffer wanted, in bytes as the
	// kernel accounts them (what getsockopt(SO_RCVBUF) reports).
	ReceiveBuffer int
	// IncludePayload puts the PHY payload itself in each lora.rx record,
	// not only its SHA-256.
	IncludePayload bool
	// StatInterval is the minimum time between two lora.stat records from
	// the same gateway; reports in between are counted and dropped.
	StatInterval time.Duration
	// TxAckTimeout bounds how long a downlink waits for a v2 gateway's
	// TX_ACK before its lora.tx record says none came.
	TxAckTimeout time.Duration

	// Gateways, when set, is the only gateway EUIs accepted; others are
	// counted and ignored.
	Gateways []gwmp.EUI
	// MaxGateways caps the gateway table; a new EUI beyond it is counted
	// and ignored until a silent one expires.
	MaxGateways int
	// GatewayExpiry forgets a gateway silent for this long.
	GatewayExpiry time.Duration

	// EventURL is the concentratord event socket (mode concentratord).
	EventURL string
	// MQTT configures mode mqtt.
	MQTT MQTTOpts

	// Logger receives the driver's logs; a "component" attribute is added.
	Logger *slog.Logger
	// Now stamps observations and tracks gateway liveness.
	Now func() time.Time
	// Clock runs the reconnect and re-resolve timers; nil is the wall clock.
	Clock clock.Clock
	// Token returns PULL_RESP tokens; nil means math/rand/v2.
	Token func() uint16
	// LookupHost resolves upstream host names; nil means net.DefaultResolver.
	LookupHost func(ctx context.Context, host string) ([]netip.Addr, error)

	// queue is the reader → worker queue length (0: burstDatagrams); tests
	// shrink it to make the kernel buffer overflow.
	queue int
	// noForce skips SO_RCVBUFFORCE, as an unprivileged daemon would; tests
	// use it to exercise the rmem_max path as root.
	noForce bool
}

// DefaultOpts returns the defaults: DefaultListen, a 32 MiB buffer, at most
// one lora.stat per gateway per 30 s, at most 64 gateways, each forgotten
// after an hour of silence.
func DefaultOpts() Opts {
	return Opts{
		Mode:          ModeUDP,
		Listen:        DefaultListen,
		ReceiveBuffer: DefaultReceiveBuffer,
		StatInterval:  30 * time.Second,
		TxAckTimeout:  5 * time.Second,
		MaxGateways:   64,
		GatewayExpiry: time.Hour,
		EventURL:      "ipc:///tmp/concentratord_event",
		MQTT:          MQTTOpts{Server: "tcp://127.0.0.1:1883", Topic: "eu868", Marshaler: "protobuf"},
	}
}

// Stat is the Data of a lora.stat observation: one gateway status report.
// The counters are the forwarder's since its previous report (PROTOCOL.TXT
// §4); a counter the gateway did not send is absent, not 0. Gateway and
// TimeUnixNano are added here. Values outside physical ranges are dropped
// and counted (Stats.Malformed "stat_…").
type Stat struct {
	Gateway      string   `cbor:"gw"`             // gateway EUI, 16 hex digits
	RXNb         *uint32  `cbor:"rxnb,omitempty"` // frames received
	RXOK         *uint32  `cbor:"rxok,omitempty"` // ... with a good CRC
	RXFW         *uint32  `cbor:"rxfw,omitempty"` // ... forwarded
	ACKR         *float64 `cbor:"ackr,omitempty"` // % of upstream datagrams acknowledged
	DWNb         *uint32  `cbor:"dwnb,omitempty"` // downlinks received
	TXNb         *uint32  `cbor:"txnb,omitempty"` // frames transmitted
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
	TxSent    uint64 // downlinks sent to it (relayed and Send)
	TxAcked   uint64
	TxFailed  uint64 // rejected or unanswered
}

// Stats is a snapshot of a Dev's counters, for status and doctor.
type Stats struct {
	Mode   string
	Listen string
	// Tap is true in udp mode without upstreams: nothing is relayed.
	Tap bool
	// ReceiveBuffer is what the kernel granted (SO_RCVBUF read back), bytes.
	ReceiveBuffer int
	Datagrams     uint64
	RxOK          uint64
	RxBadCRC      uint64
	RxNoCRC       uint64
	RxInvalid     uint64
	StatEmitted   uint64
	StatSkipped   uint64 // stat reports inside StatInterval
	TxRecords     uint64 // lora.tx records emitted
	// SocketDrops is the kernel's count of datagrams dropped on the socket
	// because the receive buffer was full, polled every second. DropsCounted
	// is false where the OS does not report it.
	SocketDrops  uint64
	DropsCounted bool
	// Malformed counts refused datagrams, objects and values by reason:
	// short, too_large, version, identifier, json, direction, rxpk, stat,
	// rssi, snr, stat_position, …, gateway_not_allowed, gateway_table_full.
	Malformed map[string]uint64
	// MaxGateways is the table's cap; GatewaysRefused counts datagrams from
	// new gateways refused because it was full, GatewaysExpired the
	// gateways forgotten after GatewayExpiry of silence.
	MaxGateways     int
	GatewaysRefused uint64
	GatewaysExpired uint64
	Gateways        []GatewayStats // sorted by EUI
	Upstreams       []UpstreamStats
	// Connected is false while a concentratord or MQTT source is down.
	Connected bool
	LastError string
}

// Dev is one LoRa concentrator source: a packet forwarder server (udp
// multiplexer or tap), a concentratord subscriber or an MQTT subscriber.
type Dev struct {
	name string
	o    Opts
	log  *slog.Logger

	mu        sync.Mutex
	conn      *net.UDPConn
	gws       map[gwmp.EUI]*gateway
	allow     map[gwmp.EUI]bool // nil: any gateway
	pending   map[pendKey]*downlink
	ups       []*upstream
	stats     Stats
	malformed map[string]uint64
	work      chan item // reader → worker
	// queued and processed count work items, so tests can wait for the
	// worker to catch up.
	queued, processed atomic.Uint64
	links             sync.WaitGroup

	badLog, dropLog, capLog *ratelog.Limiter
}

type gateway struct {
	GatewayStats
	lastTmst     uint32
	haveTmst     bool
	lastStatEmit time.Time
	links        []*link // by upstream index; nil where its filter excludes the gateway
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
	opts := drivers.OptsOf(o)
	drivers.SetDefault(&opts.Mode, def.Mode)
	drivers.SetDefault(&opts.Listen, def.Listen)
	switch opts.Mode {
	case ModeUDP, ModeConcentratord, ModeMQTT:
	default:
		return nil, fmt.Errorf("lora: new %s: mode %q: want udp, concentratord or mqtt: %w", name, opts.Mode, ErrInvalidOption)
	}
	if _, _, err := net.SplitHostPort(opts.Listen); err != nil {
		return nil, fmt.Errorf("lora: new %s: listen %q: want host:port: %w", name, opts.Listen, ErrInvalidOption)
	}
	drivers.SetDefault(&opts.ReceiveBuffer, def.ReceiveBuffer)
	if opts.ReceiveBuffer < 0 || opts.ReceiveBuffer > 1<<30 {
		return nil, fmt.Errorf("lora: new %s: receive buffer %d bytes: want 1 B to 1 GiB: %w", name, opts.ReceiveBuffer, ErrInvalidOption)
	}
	drivers.SetDefault(&opts.StatInterval, def.StatInterval)
	drivers.SetDefault(&opts.TxAckTimeout, def.TxAckTimeout)
	drivers.SetDefault(&opts.MaxGateways, def.MaxGateways)
	drivers.SetDefault(&opts.GatewayExpiry, def.GatewayExpiry)
	if opts.StatInterval < 0 || opts.TxAckTimeout < 0 || opts.GatewayExpiry < 0 || opts.MaxGateways < 0 {
		return nil, fmt.Errorf("lora: new %s: negative interval or limit: %w", name, ErrInvalidOption)
	}
	drivers.SetDefault(&opts.EventURL, def.EventURL)
	if opts.MQTT.Server == "" {
		opts.MQTT.Server = def.MQTT.Server
	}
	if opts.MQTT.Topic == "" {
		opts.MQTT.Topic = def.MQTT.Topic
	}
	if opts.MQTT.Marshaler == "" {
		opts.MQTT.Marshaler = def.MQTT.Marshaler
	}
	if opts.MQTT.Marshaler != "protobuf" && opts.MQTT.Marshaler != "json" {
		return nil, fmt.Errorf("lora: new %s: mqtt marshaler %q: want protobuf or json: %w", name, opts.MQTT.Marshaler, ErrInvalidOption)
	}
	if opts.MQTT.ClientID == "" {
		opts.MQTT.ClientID = "edge-agent-" + name
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Token == nil {
		opts.Token = func() uint16 { return uint16(rand.Uint32()) }
	}
	if opts.LookupHost == nil {
		opts.LookupHost = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	d := &Dev{
		name:      name,
		o:         opts,
		log:       lg.With("component", "lora", "driver", name),
		gws:       map[gwmp.EUI]*gateway{},
		pending:   map[pendKey]*downlink{},
		malformed: map[string]uint64{},
		badLog:    ratelog.New(5*time.Second, 5),
		dropLog:   ratelog.New(10*time.Second, 1),
		capLog:    ratelog.New(50*time.Second, 1),
		stats: Stats{Mode: opts.Mode, Listen: opts.Listen, DropsCounted: dropsSupported, MaxGateways: opts.MaxGateways,
			Tap: opts.Mode == ModeUDP && len(opts.Upstreams) == 0},
	}
	if opts.Mode != ModeUDP {
		d.stats.Listen = ""
	}
	if len(opts.Gateways) > 0 {
		d.allow = make(map[gwmp.EUI]bool, len(opts.Gateways))
		for _, e := range opts.Gateways {
			d.allow[e] = true
		}
	}
	seen := map[string]bool{}
	for i, u := range opts.Upstreams {
		if u.Name == "" {
			u.Name = u.Addr
		}
		if _, _, err := net.SplitHostPort(u.Addr); err != nil {
			return nil, fmt.Errorf("lora: new %s: upstream %q: addr %q: want host:port: %w", name, u.Name, u.Addr, ErrInvalidOption)
		}
		if seen[u.Name] {
			return nil, fmt.Errorf("lora: new %s: upstream name %q used twice: %w", name, u.Name, ErrInvalidOption)
		}
		seen[u.Name] = true
		d.ups = append(d.ups, newUpstream(d, i, u))
	}
	return d, nil
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
	s.Upstreams = make([]UpstreamStats, 0, len(d.ups))
	for _, u := range d.ups {
		s.Upstreams = append(s.Upstreams, u.snapshot(now))
	}
	return s
}

// Probe checks that the listen address can be bound. While Run holds it,
// the answer is Loaded. The other modes connect to nothing at probe time.
func (d *Dev) Probe(ctx context.Context) (drivers.Probe, error) {
	if d.o.Mode != ModeUDP {
		return d.probeSource()
	}
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

// item is one unit of work for the worker goroutine: a PUSH_DATA to decode
// and attest, or a finished downlink to record.
type item struct {
	buf  []byte // a copy of the datagram
	from netip.AddrPort
	at   time.Time
	dl   *downlink
}

// Run serves until ctx is done. It returns nil on cancellation and an
// error when the address cannot be bound or emit fails.
func (d *Dev) Run(ctx context.Context, emit drivers.Emit) error {
	switch d.o.Mode {
	case ModeConcentratord:
		return d.runConcentratord(ctx, emit)
	case ModeMQTT:
		return d.runMQTT(ctx, emit)
	}
	conn, err := d.listen(ctx)
	if err != nil {
		return err
	}
	work := make(chan item, d.queueLen())
	d.mu.Lock()
	if d.conn != nil {
		d.mu.Unlock()
		_ = conn.Close()
		return fmt.Errorf("lora: run %s: %w", d.name, ErrRunning)
	}
	d.conn, d.work = conn, work
	d.mu.Unlock()
	if d.stats.Tap {
		d.log.Info("tap mode (upstreams = []): acknowledging and attesting the forwarder's traffic, relaying nothing; the hotspot's network service must come from a multiplexer in front of this agent")
	}

	g, gctx := errgroup.WithContext(ctx)
	// Closing the socket is the only way to interrupt a blocked read.
	stop := context.AfterFunc(gctx, func() { _ = conn.Close() })
	defer stop()
	g.Go(func() error { return d.worker(gctx, emit, work) })
	g.Go(func() error { d.janitor(gctx, conn, work); return nil })
	for _, u := range d.ups {
		g.Go(func() error { u.resolve(gctx); return nil })
	}
	g.Go(func() error {
		buf := make([]byte, gwmp.MaxDatagram+1) // +1 detects oversize datagrams
		oob := make([]byte, oobSize)
		for {
			n, oobn, _, from, err := conn.ReadMsgUDPAddrPort(buf, oob)
			if err != nil {
				if gctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("lora: run %s: read: %w", d.name, err)
			}
			now := d.o.Now()
			if oobn > 0 {
				if n, ok := parseDrops(oob[:oobn]); ok {
					d.noteDrops(n, now)
				}
			}
			from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
			if !d.receive(gctx, conn, buf[:n], from, now) {
				return nil
			}
		}
	})
	err = g.Wait()
	d.mu.Lock()
	d.conn, d.work = nil, nil
	for _, gw := range d.gws {
		closeLinks(gw)
	}
	d.mu.Unlock()
	d.links.Wait()
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}

// queueLen: the worker queue holds a design burst of PUSH_DATA (copies of
// a few hundred bytes each) while the pipeline is slow, so the reader keeps
// acknowledging and relaying; beyond it the kernel buffer takes over.
func (d *Dev) queueLen() int {
	if d.o.queue > 0 {
		return d.o.queue
	}
	return burstDatagrams
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

func (d *Dev) noteDrops(n uint32, now time.Time) {
	d.mu.Lock()
	prev := d.stats.SocketDrops
	if uint64(n) > prev {
		d.stats.SocketDrops = uint64(n)
	}
	granted := d.stats.ReceiveBuffer
	d.mu.Unlock()
	if uint64(n) > prev {
		if ok, sup := d.dropLog.Allow(now); ok {
			d.log.Warn("kernel dropped packet forwarder datagrams: the socket buffer was full; raise receive_buffer or speed up the pipeline",
				"dropped_total", n, "receive_buffer", granted, "suppressed", sup)
		}
	}
}

// janitor runs once a second: it polls the kernel's drop counter (so the
// metric is right after a burst, not only at the next datagram), times out
// downlinks whose TX_ACK never came, and expires silent gateways.
func (d *Dev) janitor(ctx context.Context, conn *net.UDPConn, work chan<- item) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := d.o.Now()
		if n, ok := readDrops(conn); ok {
			d.noteDrops(n, now)
		}
		for _, dl := range d.expireDownlinks(now) {
			select {
			case work <- item{dl: dl, at: now}:
			case <-ctx.Done():
				return
			}
		}
		d.expireGateways(now)
	}
}

func (d *Dev) expireGateways(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for eui, g := range d.gws {
		if now.Sub(g.LastSeen) > d.o.GatewayExpiry {
			closeLinks(g)
			delete(d.gws, eui)
			d.stats.GatewaysExpired++
			d.log.Info("forgot a silent gateway", "gateway", g.EUI, "silent_for", now.Sub(g.LastSeen).Round(time.Second), "gateway_expiry", d.o.GatewayExpiry)
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

func (d *Dev) badDatagram(reason string, from any, err error, now time.Time) {
	d.mu.Lock()
	d.malformed[reason]++
	d.mu.Unlock()
	if ok, sup := d.badLog.Allow(now); ok {
		d.log.Warn("malformed packet forwarder datagram ignored", "reason", reason, "from", from, "err", err, "suppressed", sup)
	}
}

// receive handles one datagram in the reader goroutine: acknowledge it,
// relay it to the upstreams and route TX_ACKs, all before any decoding of
// the JSON beyond a validity check, so neither the forwarder's ack timer nor
// the network servers wait for the pipeline. PUSH_DATA is then queued for
// the worker. It returns false once ctx is done.
func (d *Dev) receive(ctx context.Context, conn *net.UDPConn, b []byte, from netip.AddrPort, now time.Time) bool {
	d.mu.Lock()
	d.stats.Datagrams++
	d.mu.Unlock()
	h, body, err := gwmp.DecodeHeader(b)
	if err == nil && (h.ID == gwmp.PushAck || h.ID == gwmp.PullAck || h.ID == gwmp.PullResp) {
		err = fmt.Errorf("lora: %v is sent by servers, not gateways", h.ID)
		d.badDatagram("direction", from, err, now)
		return true
	}
	if err != nil {
		d.badDatagram(malformedReason(err), from, err, now)
		return true
	}
	d.mu.Lock()
	g, reason := d.admit(h.EUI, now)
	if g == nil {
		d.malformed[reason]++
		d.mu.Unlock()
		if reason == "gateway_table_full" {
			if ok, sup := d.capLog.Allow(now); ok {
				d.log.Warn("gateway table full: ignoring a new gateway until a silent one expires; raise max_gateways or list yours in gateways",
					"gateway", h.EUI.String(), "from", from, "max_gateways", d.o.MaxGateways, "suppressed", sup)
			}
		} else if ok, sup := d.badLog.Allow(now); ok {
			d.log.Warn("datagram from a gateway not in the gateways list ignored", "gateway", h.EUI.String(), "from", from, "suppressed", sup)
		}
		return true
	}
	g.Version, g.LastSeen = h.Version, now
	switch h.ID {
	case gwmp.PushData:
		g.Addr = from
		d.mu.Unlock()
		// An undecodable body is not acknowledged, so the forwarder's own
		// ack statistics show the fault; it is still relayed, since the
		// network server is the judge of its own protocol.
		valid := len(body) > 0 && body[0] == '{' && json.Valid(body)
		if valid {
			d.ack(conn, h, gwmp.PushAck, from, now)
		}
		d.relayUp(g, b, now)
		if !valid {
			d.badDatagram("json", from, fmt.Errorf("lora: PUSH_DATA body is not a JSON object: %w", gwmp.ErrJSON), now)
			return true
		}
		select {
		case d.work <- item{buf: append([]byte(nil), b...), from: from, at: now}:
			d.queued.Add(1)
		case <-ctx.Done():
			return false
		}
	case gwmp.PullData:
		// Record the downlink path before acking: once the gateway holds its
		// PULL_ACK, a downlink for it must find the path.
		g.PullAddr, g.LastPull = from, now
		d.mu.Unlock()
		d.ack(conn, h, gwmp.PullAck, from, now)
		d.relayUp(g, b, now)
	case gwmp.TxAck:
		dl := d.pending[pendKey{h.EUI, h.Token}]
		if dl != nil {
			delete(d.pending, pendKey{h.EUI, h.Token})
		}
		d.mu.Unlock()
		if dl == nil {
			d.badDatagram("tx_ack_unknown_token", from, fmt.Errorf("lora: TX_ACK token %d matches no pending PULL_RESP", h.Token), now)
			return true
		}
		d.txAcked(ctx, dl, b, body, now)
	default:
		d.mu.Unlock()
	}
	return true
}

// admit returns the gateway's entry, creating it if the allow-list and the
// cap permit; otherwise nil and the reason. d.mu must be held.
func (d *Dev) admit(eui gwmp.EUI, now time.Time) (*gateway, string) {
	if g, ok := d.gws[eui]; ok {
		return g, ""
	}
	if d.allow != nil && !d.allow[eui] {
		return nil, "gateway_not_allowed"
	}
	if len(d.gws) >= d.o.MaxGateways {
		d.stats.GatewaysRefused++
		return nil, "gateway_table_full"
	}
	g := &gateway{GatewayStats: GatewayStats{EUI: eui.String(), LastSeen: now}}
	d.gws[eui] = g
	return g, ""
}

func (d *Dev) ack(conn *net.UDPConn, h gwmp.Header, id gwmp.Identifier, to netip.AddrPort, now time.Time) {
	a := [4]byte{h.Version, byte(h.Token >> 8), byte(h.Token), byte(id)}
	if _, err := conn.WriteToUDPAddrPort(a[:], to); err != nil {
		if ok, sup := d.badLog.Allow(now); ok {
			d.log.Warn("could not acknowledge datagram", "to", to, "ack", id, "err", err, "suppressed", sup)
		}
	}
}

// worker decodes and attests queued PUSH_DATA and records finished
// downlinks, in arrival order. It alone calls emit.
func (d *Dev) worker(ctx context.Context, emit drivers.Emit, work <-chan item) error {
	for {
		var it item
		select {
		case <-ctx.Done():
			return nil
		case it = <-work:
		}
		if it.dl != nil {
			if err := d.recordTx(ctx, emit, it.dl, it.at); err != nil {
				return fmt.Errorf("lora: run %s: emit: %w", d.name, err)
			}
			continue
		}
		err := d.handlePush(ctx, emit, it.buf, it.from, it.at)
		d.processed.Add(1)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("lora: run %s: emit: %w", d.name, err)
		}
	}
}

func (d *Dev) handlePush(ctx context.Context, emit drivers.Emit, b []byte, from netip.AddrPort, now time.Time) error {
	p, err := gwmp.Decode(b)
	if err != nil {
		d.badDatagram(malformedReason(err), from, err, now)
		return nil
	}
	return d.push(ctx, emit, p, from, now)
}

// lookup returns the gateway's entry, or a detached one if it expired
// meanwhile (its frames are still evidence). d.mu must be held.
func (d *Dev) lookup(eui gwmp.EUI) *gateway {
	if g, ok := d.gws[eui]; ok {
		return g
	}
	return &gateway{GatewayStats: GatewayStats{EUI: eui.String()}}
}

func (d *Dev) push(ctx context.Context, emit drivers.Emit, p gwmp.Packet, from netip.AddrPort, now time.Time) error {
	d.mu.Lock()
	g := d.lookup(p.EUI)
	eui := g.EUI
	d.mu.Unlock()
	for _, err := range p.Push.Invalid {
		d.countInvalid(g, "rxpk", from, err, now)
	}
	for i := range p.Push.RXPK {
		rx, v, reason, err := d.frame(&p.Push.RXPK[i], eui)
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
			d.countInvalid(g, reason, from, err, now)
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
		obs := statObs(st, eui)
		for _, reason := range checkStat(&obs) {
			d.countInvalid(nil, reason, from, fmt.Errorf("lora: stat from %s: %s out of range: dropped from the record", eui, reason), now)
		}
		return d.emitStat(ctx, emit, g, obs, now)
	}
	return nil
}

// emitStat emits a lora.stat unless the gateway's last one is more recent
// than StatInterval.
func (d *Dev) emitStat(ctx context.Context, emit drivers.Emit, g *gateway, obs Stat, now time.Time) error {
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
	if !due {
		return nil
	}
	return emit(ctx, drivers.Observation{Kind: drivers.KindLoRaStat, Source: d.name, Time: now, Data: obs})
}

func (d *Dev) countInvalid(g *gateway, reason string, from any, err error, now time.Time) {
	d.mu.Lock()
	if g != nil {
		g.RxInvalid++
		d.stats.RxInvalid++
	}
	d.malformed[reason]++
	d.mu.Unlock()
	if ok, sup := d.badLog.Allow(now); ok {
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
