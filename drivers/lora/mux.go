package lora

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/backoff"
	"github.com/edge-agent/edge-agent/drivers/lora/gwmp"
	"github.com/edge-agent/edge-agent/ratelog"
)

// The multiplexer: each gateway gets one UDP socket per upstream, so every
// network server sees each gateway from a stable address of its own, as it
// would directly. Datagrams from the gateway are relayed on the reader
// goroutine as soon as they arrive (a non-blocking UDP write each); each
// link's own goroutine reads the upstream's answers: PUSH_ACK and PULL_ACK
// are counted (the agent has already acknowledged the gateway), PULL_RESP
// is relayed to the gateway's downlink address with a token remapped if
// another upstream's pending downlink holds it, and the TX_ACK that answers
// it goes back to that upstream with its own token.

// Resolution and silence timing.
const (
	resolveEvery   = 5 * time.Minute // re-resolve a name that resolved
	resolveTimeout = 5 * time.Second
	backoffMin     = time.Second
	backoffMax     = time.Minute
	silentAfterAck = 30 * time.Second // sending but no ack for this long: "silent"
)

// Upstream states, for status and doctor.
const (
	UpstreamIdle        = "idle"        // nothing sent yet
	UpstreamOK          = "ok"          // acknowledging
	UpstreamUnresolved  = "unresolved"  // its host name does not resolve (retried with backoff)
	UpstreamUnreachable = "unreachable" // ICMP port/host unreachable since its last ack
	UpstreamSilent      = "silent"      // sent to, no ack for silentAfterAck
)

// UpstreamStats is one upstream's state.
type UpstreamStats struct {
	Name, Addr string
	Resolved   netip.AddrPort // zero until resolved
	UplinkOnly bool
	State      string
	LastError  string
	LastAck    time.Time
	Sent       uint64 // datagrams relayed to it (PUSH_DATA, PULL_DATA, TX_ACK)
	Acks       uint64 // PUSH_ACK and PULL_ACK received
	// AckRatio is Acks over the PUSH_DATA and PULL_DATA sent; 0 before any.
	AckRatio         float64
	Unsent           uint64 // not relayed: unresolved, or the socket failed
	Unreachable      uint64 // ICMP errors reported on its sockets
	Downlinks        uint64 // PULL_RESP received from it
	DownlinksRelayed uint64
	DownlinksDropped uint64 // uplink_only, or no downlink path to the gateway
	TokensRemapped   uint64
	TxAcksReturned   uint64
	Malformed        uint64
	ResolveFailures  uint64
	ResolveBackoff   time.Duration
}

type upstream struct {
	d     *Dev
	index int
	cfg   Upstream
	allow map[gwmp.EUI]bool // nil: every gateway

	mu         sync.Mutex
	addr       netip.AddrPort
	resolveErr error
	backoff    time.Duration
	lastErr    string
	lastErrAt  time.Time
	lastAck    time.Time
	lastSent   time.Time
	firstSent  time.Time
	st         UpstreamStats
	sentAcked  uint64 // PUSH_DATA + PULL_DATA sent (the ack ratio's denominator)
	log        *ratelog.Limiter
}

func newUpstream(d *Dev, i int, u Upstream) *upstream {
	up := &upstream{d: d, index: i, cfg: u, log: ratelog.New(20*time.Second, 2)}
	if len(u.Gateways) > 0 {
		up.allow = map[gwmp.EUI]bool{}
		for _, e := range u.Gateways {
			up.allow[e] = true
		}
	}
	if ap, err := netip.ParseAddrPort(u.Addr); err == nil {
		up.addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return up
}

func (u *upstream) snapshot(now time.Time) UpstreamStats {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.st
	s.Name, s.Addr, s.Resolved, s.UplinkOnly = u.cfg.Name, u.cfg.Addr, u.addr, u.cfg.UplinkOnly
	s.LastError, s.LastAck, s.ResolveBackoff = u.lastErr, u.lastAck, u.backoff
	if u.sentAcked > 0 {
		s.AckRatio = min(1, float64(s.Acks)/float64(u.sentAcked))
	}
	switch {
	case !u.addr.IsValid():
		s.State = UpstreamUnresolved
	case u.firstSent.IsZero():
		s.State = UpstreamIdle
	case !u.lastErrAt.IsZero() && u.lastErrAt.After(u.lastAck) && s.Unreachable > 0 && now.Sub(u.lastErrAt) < silentAfterAck:
		s.State = UpstreamUnreachable
	case u.lastSent.Sub(maxTime(u.lastAck, u.firstSent)) > silentAfterAck:
		s.State = UpstreamSilent
	default:
		s.State = UpstreamOK
	}
	return s
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (u *upstream) current() netip.AddrPort {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.addr
}

func (u *upstream) fail(err error, now time.Time) {
	u.mu.Lock()
	u.lastErr, u.lastErrAt = err.Error(), now
	u.mu.Unlock()
	if ok, sup := u.log.Allow(now); ok {
		u.d.log.Warn("upstream network server problem; retrying, other upstreams and attestation continue",
			"upstream", u.cfg.Name, "addr", u.cfg.Addr, "err", err, "suppressed", sup)
	}
}

// resolve keeps u.addr current for a host name: on failure it retries with
// exponential backoff (1 s to 1 min); after success it re-resolves every few
// minutes. It never holds a lock while resolving, so relaying to the other
// upstreams and attestation never wait for DNS.
func (u *upstream) resolve(ctx context.Context) {
	host, portStr, _ := net.SplitHostPort(u.cfg.Addr)
	if _, err := netip.ParseAddr(host); err == nil {
		return // a literal address: nothing to resolve
	}
	port, err := net.LookupPort("udp", portStr)
	if err != nil {
		u.fail(err, u.d.o.Now())
		return
	}
	bo := backoff.New(backoffMin, backoffMax, u.d.o.Clock)
	for {
		rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		addrs, err := u.d.o.LookupHost(rctx, host)
		cancel()
		if ctx.Err() != nil {
			return
		}
		wait := resolveEvery
		now := u.d.o.Now()
		if err == nil && len(addrs) == 0 {
			err = errors.New("no addresses")
		}
		if err != nil {
			u.mu.Lock()
			u.st.ResolveFailures++
			wait = bo.Next()
			u.resolveErr, u.backoff = err, wait
			u.mu.Unlock()
			u.fail(err, now)
		} else {
			ap := netip.AddrPortFrom(pick(addrs).Unmap(), uint16(port))
			u.mu.Lock()
			if u.addr != ap {
				u.d.log.Info("upstream resolved", "upstream", u.cfg.Name, "addr", ap)
			}
			u.addr, u.resolveErr, u.backoff = ap, nil, 0
			u.mu.Unlock()
			bo.Reset()
		}
		if bo.Wait(ctx, wait) != nil {
			return
		}
	}
}

// pick prefers IPv4, which every forwarder path supports.
func pick(addrs []netip.Addr) netip.Addr {
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a
		}
	}
	return addrs[0]
}

// link is one gateway's socket to one upstream.
type link struct {
	u    *upstream
	eui  gwmp.EUI
	conn *net.UDPConn // nil until dialled
	peer netip.AddrPort
	// retryAt delays a redial after the socket could not be created.
	retryAt time.Time
}

// relayUp sends a gateway datagram to every upstream that serves the
// gateway. Called on the reader goroutine only.
func (d *Dev) relayUp(g *gateway, b []byte, now time.Time) {
	if len(d.ups) == 0 {
		return
	}
	var h gwmp.Identifier = gwmp.Identifier(b[3])
	d.mu.Lock()
	if g.links == nil {
		g.links = make([]*link, len(d.ups))
		eui, _ := gwmp.ParseEUI(g.EUI)
		for i, u := range d.ups {
			if u.allow == nil || u.allow[eui] {
				g.links[i] = &link{u: u, eui: eui}
			}
		}
	}
	links := g.links
	d.mu.Unlock()
	for _, l := range links {
		if l != nil {
			l.send(b, h, now)
		}
	}
}

func (l *link) send(b []byte, id gwmp.Identifier, now time.Time) {
	u := l.u
	peer := u.current()
	if !peer.IsValid() {
		u.mu.Lock()
		u.st.Unsent++
		u.mu.Unlock()
		return
	}
	if l.conn == nil || l.peer != peer {
		if now.Before(l.retryAt) {
			u.mu.Lock()
			u.st.Unsent++
			u.mu.Unlock()
			return
		}
		if err := l.dial(peer); err != nil {
			l.retryAt = now.Add(backoffMin)
			u.mu.Lock()
			u.st.Unsent++
			u.mu.Unlock()
			u.fail(err, now)
			return
		}
	}
	_, err := l.conn.Write(b)
	u.mu.Lock()
	if u.firstSent.IsZero() {
		u.firstSent = now
	}
	u.lastSent = now
	u.st.Sent++
	if id == gwmp.PushData || id == gwmp.PullData {
		u.sentAcked++
	}
	u.mu.Unlock()
	if err != nil {
		l.noteErr(err, now)
	}
}

// dial replaces the link's socket with one connected to peer (a connected
// UDP socket reports ICMP unreachable as ECONNREFUSED) and starts its reader.
func (l *link) dial(peer netip.AddrPort) error {
	d := l.u.d
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(peer))
	if err != nil {
		return err
	}
	d.mu.Lock()
	if d.conn == nil { // Run is stopping
		d.mu.Unlock()
		_ = c.Close()
		return errors.New("lora: not running")
	}
	old := l.conn
	l.conn, l.peer = c, peer
	d.links.Add(1)
	d.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	go l.read(c)
	return nil
}

func (l *link) noteErr(err error, now time.Time) {
	u := l.u
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		u.mu.Lock()
		u.st.Unreachable++
		u.mu.Unlock()
	}
	u.fail(err, now)
}

func closeLinks(g *gateway) {
	for _, l := range g.links {
		if l != nil && l.conn != nil {
			_ = l.conn.Close()
		}
	}
}

// read serves one link socket until it is closed.
func (l *link) read(c *net.UDPConn) {
	d, u := l.u.d, l.u
	defer d.links.Done()
	buf := make([]byte, gwmp.MaxDatagram+1)
	for {
		n, err := c.Read(buf)
		now := d.o.Now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.noteErr(err, now)
			continue
		}
		b := buf[:n]
		h, _, err := gwmp.DecodeHeader(b)
		if err != nil {
			u.mu.Lock()
			u.st.Malformed++
			u.mu.Unlock()
			continue
		}
		switch h.ID {
		case gwmp.PushAck, gwmp.PullAck:
			u.mu.Lock()
			u.st.Acks++
			u.lastAck = now
			u.mu.Unlock()
		case gwmp.PullResp:
			d.relayDown(l, b, h, now)
		default:
			u.mu.Lock()
			u.st.Malformed++
			u.mu.Unlock()
		}
	}
}

// maxPending bounds the downlinks awaiting a TX_ACK, across gateways. A
// gateway transmits at most a few per second; thousands pending means a
// flood.
const maxPending = 4096

// pendKey names a downlink awaiting its TX_ACK: tokens are per gateway.
type pendKey struct {
	eui   gwmp.EUI
	token uint16
}

// downlink is one PULL_RESP sent to a gateway.
type downlink struct {
	eui      gwmp.EUI
	up       *upstream // nil: Dev.Send
	link     *link
	token    uint16 // as sent to the gateway
	orig     uint16 // as the upstream sent it
	version  uint8
	body     []byte // the PULL_RESP JSON
	sent     time.Time
	deadline time.Time
	// Filled when it ends.
	ack      []byte // the TX_ACK datagram's body; nil: empty ack
	acked    bool
	timedOut bool
	ch       chan<- txResult // Send's waiter
}

type txResult struct {
	ack *gwmp.TxAckBody
	ok  bool // a TX_ACK came
}

// relayDown forwards an upstream's PULL_RESP to the gateway (from the
// listen socket, the address the gateway pulls from).
func (d *Dev) relayDown(l *link, b []byte, h gwmp.Header, now time.Time) {
	u := l.u
	u.mu.Lock()
	u.st.Downlinks++
	u.mu.Unlock()
	if u.cfg.UplinkOnly {
		u.mu.Lock()
		u.st.DownlinksDropped++
		u.mu.Unlock()
		return
	}
	d.mu.Lock()
	g, ok := d.gws[l.eui]
	conn := d.conn
	if !ok || !g.PullAddr.IsValid() || conn == nil {
		d.mu.Unlock()
		u.mu.Lock()
		u.st.DownlinksDropped++
		u.mu.Unlock()
		return
	}
	to, version := g.PullAddr, g.Version
	if version >= gwmp.Version2 && len(d.pending) >= maxPending {
		// An upstream flooding PULL_RESPs must neither grow the table nor
		// exhaust the 16-bit token space (the remapping below would spin).
		d.mu.Unlock()
		u.mu.Lock()
		u.st.DownlinksDropped++
		u.mu.Unlock()
		d.countInvalid(nil, "downlink_backlog", u.cfg.Name, errors.New("lora: too many downlinks awaiting TX_ACK; dropped"), now)
		return
	}
	dl := &downlink{eui: l.eui, up: u, link: l, token: h.Token, orig: h.Token, version: version,
		body: append([]byte(nil), b[4:]...), sent: now, deadline: now.Add(d.o.TxAckTimeout)}
	remapped := false
	if version >= gwmp.Version2 {
		if _, busy := d.pending[pendKey{l.eui, dl.token}]; busy {
			for {
				dl.token = d.o.Token()
				if _, busy := d.pending[pendKey{l.eui, dl.token}]; !busy {
					break
				}
			}
			remapped = true
		}
		d.pending[pendKey{l.eui, dl.token}] = dl
	}
	g.TxSent++
	work := d.work
	d.mu.Unlock()
	out := b
	if remapped {
		out = append([]byte(nil), b...)
		out[1], out[2] = byte(dl.token>>8), byte(dl.token)
	}
	_, err := conn.WriteToUDPAddrPort(out, to)
	u.mu.Lock()
	u.st.DownlinksRelayed++
	if remapped {
		u.st.TokensRemapped++
	}
	u.mu.Unlock()
	if err != nil {
		d.log.Warn("could not relay a downlink to the gateway", "gateway", l.eui.String(), "upstream", u.cfg.Name, "err", err)
	}
	if version < gwmp.Version2 && work != nil {
		// Protocol v1 has no TX_ACK: the record says so at once.
		select {
		case work <- item{dl: dl, at: now}:
		default:
			d.countInvalid(nil, "tx_record_queue_full", l.eui.String(), errors.New("lora: worker queue full"), now)
		}
	}
}

// txAcked routes a TX_ACK back to the upstream whose downlink it answers,
// with that upstream's own token, and queues the lora.tx record.
func (d *Dev) txAcked(ctx context.Context, dl *downlink, b, body []byte, now time.Time) {
	dl.acked = true
	if len(trimNUL(body)) > 0 {
		dl.ack = append([]byte(nil), body...)
	}
	d.mu.Lock()
	if g, ok := d.gws[dl.eui]; ok {
		g.LastSeen = now
	}
	work := d.work
	d.mu.Unlock()
	if dl.up != nil && dl.link.conn != nil {
		out := append([]byte(nil), b...)
		out[1], out[2] = byte(dl.orig>>8), byte(dl.orig)
		_, err := dl.link.conn.Write(out)
		u := dl.up
		u.mu.Lock()
		u.st.TxAcksReturned++
		u.st.Sent++
		u.mu.Unlock()
		if err != nil {
			dl.link.noteErr(err, now)
		}
	}
	if dl.ch != nil {
		// Send's own downlink: it records it once it has the verdict.
		r := txResult{ok: true}
		if len(dl.ack) > 0 {
			var ab gwmp.TxAckBody
			if err := json.Unmarshal(trimNUL(dl.ack), &ab); err == nil {
				r.ack = &ab
			} else {
				r.ack = &gwmp.TxAckBody{TxpkAck: gwmp.TxpkAck{Error: "UNDECODABLE"}}
			}
		}
		dl.ch <- r // buffered, never blocks
		return
	}
	if work != nil {
		select {
		case work <- item{dl: dl, at: now}:
		case <-ctx.Done():
		}
	}
}

func trimNUL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == 0 || b[len(b)-1] == ' ' || b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// expireDownlinks removes the downlinks whose TX_ACK is overdue.
func (d *Dev) expireDownlinks(now time.Time) []*downlink {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*downlink
	for k, dl := range d.pending {
		if dl.ch == nil && now.After(dl.deadline) {
			delete(d.pending, k)
			dl.timedOut = true
			out = append(out, dl)
		}
	}
	return out
}
