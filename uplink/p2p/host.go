package p2p

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	blankhost "github.com/libp2p/go-libp2p/p2p/host/blank"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/veraison/go-cose"

	"github.com/edge-agent/edge-agent/attest"
)

// ed25519Keyed is implemented by signers whose key may be used as the libp2p
// host identity (attest's file signer). A secure element cannot offer it.
type ed25519Keyed interface {
	Ed25519PrivateKey() ed25519.PrivateKey
}

// HostKey returns the libp2p identity of signer: the same Ed25519 key, so
// the host's peer ID is the signer's DeviceID. It fails with ErrNoHostKey for
// a signer that cannot export its key, and checks the two ids agree.
//
// A hardware ES256 key (tpm:, ecc608:) is the host identity too: libp2p
// signs with it once per connection (the Noise handshake), through the
// TPM or chip, so the peer ID is still the device id ("Qm…", libp2p's
// ECDSA form). Behind a session signer the long-term key is used, never
// the session key.
func HostKey(signer attest.Signer) (crypto.PrivKey, error) {
	if ss, ok := signer.(interface{ Device() attest.Signer }); ok {
		signer = ss.Device()
	}
	if signer.Algorithm() == cose.AlgorithmES256 {
		return hardwareHostKey(signer)
	}
	k, ok := signer.(ed25519Keyed)
	if !ok {
		return nil, fmt.Errorf("p2p: host key: signer %T: %w", signer, ErrNoHostKey)
	}
	priv, err := crypto.UnmarshalEd25519PrivateKey(k.Ed25519PrivateKey())
	if err != nil {
		return nil, fmt.Errorf("p2p: host key: %w", err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("p2p: host key: %w", err)
	}
	if id.String() != signer.DeviceID() {
		return nil, fmt.Errorf("p2p: host key: peer id %s differs from device id %s: %w", id, signer.DeviceID(), ErrNoHostKey)
	}
	return priv, nil
}

// hostConfig sizes the host. The defaults suit a Pi with 512 MB of RAM that
// shares it with the rest of the agent.
type hostConfig struct {
	key      crypto.PrivKey
	listen   []ma.Multiaddr
	maxPeers int // connection manager high water; low water is 3/4 of it
	// memory is what the resource manager lets libp2p use in all; file
	// descriptors are bounded to twice the peer count plus listeners.
	memory int64
}

// newHost assembles a host from its parts: TCP, Noise, Yamux, a resource
// manager and a connection manager. libp2p.New would link QUIC, WebRTC and
// WebTransport whatever options it gets (about 8 MiB on arm64); gossip among
// a few hundred peers needs none of them. No NAT port mapping, relay, hole
// punching or AutoNAT either (a blank host with identify and ping, not
// basichost): devices dial out to bootstrap peers.
func newHost(c hostConfig) (*ownedHost, error) {
	pid, err := peer.IDFromPrivateKey(c.key)
	if err != nil {
		return nil, fmt.Errorf("p2p: host: %w", err)
	}
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		return nil, fmt.Errorf("p2p: host: peerstore: %w", err)
	}
	if err := ps.AddPrivKey(pid, c.key); err != nil {
		return nil, fmt.Errorf("p2p: host: %w", err)
	}
	if err := ps.AddPubKey(pid, c.key.GetPublic()); err != nil {
		return nil, fmt.Errorf("p2p: host: %w", err)
	}

	// Scale the default limits to the memory budget rather than the
	// machine's: AutoScale would hand libp2p 1/8 of a big collector's RAM
	// but also of a Pi's, which the outbox and drivers need more.
	fds := 2*c.maxPeers + 64
	limits := rcmgr.DefaultLimits.Scale(c.memory, fds)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits), rcmgr.WithMetricsDisabled())
	if err != nil {
		ps.Close()
		return nil, fmt.Errorf("p2p: host: resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(c.maxPeers*3/4, c.maxPeers, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		rm.Close()
		ps.Close()
		return nil, fmt.Errorf("p2p: host: connection manager: %w", err)
	}
	fail := func(err error) (*ownedHost, error) {
		cm.Close()
		rm.Close()
		ps.Close()
		return nil, fmt.Errorf("p2p: host: %w", err)
	}

	bus := eventbus.NewBus()
	sw, err := swarm.NewSwarm(pid, ps, bus, swarm.WithResourceManager(rm), swarm.WithDialTimeout(15*time.Second))
	if err != nil {
		return fail(err)
	}
	nt, err := noise.New(noise.ID, c.key, nil)
	if err != nil {
		sw.Close()
		return fail(err)
	}
	up, err := upgrader.New([]sec.SecureTransport{nt},
		[]upgrader.StreamMuxer{{ID: yamux.ID, Muxer: yamux.DefaultTransport}}, nil, rm, nil)
	if err != nil {
		sw.Close()
		return fail(err)
	}
	tpt, err := tcp.NewTCPTransport(up, rm, nil, tcp.WithConnectionTimeout(15*time.Second))
	if err != nil {
		sw.Close()
		return fail(err)
	}
	if err := sw.AddTransport(tpt); err != nil {
		sw.Close()
		return fail(err)
	}
	// The blank host (protocol negotiation and stream handlers) plus the two
	// protocols every libp2p node expects of a peer: identify and ping.
	// basichost would bring them too, but also AutoNAT v1 and v2, the
	// circuit relay, hole punching and an embedded IPv6 ASN table (about
	// 4 MiB on arm64), none of which gossip between dialled peers needs.
	// Identify is not optional: gossipsub (go, rust and js alike) opens its
	// stream to a peer only once identify has said the peer speaks it.
	h := blankhost.NewBlankHost(sw, blankhost.WithConnectionManager(cm), blankhost.WithEventBus(bus))
	ids, err := newIdentifier(h, userAgent)
	if err != nil {
		h.Close()
		return fail(err)
	}
	ping.NewPingService(h)
	oh := &ownedHost{Host: h, closers: []func() error{ids.close, cm.Close, rm.Close, ps.Close}}
	// start runs once the caller has registered its protocols, so identify
	// never tells a peer an incomplete list, and before the listener, so no
	// connection escapes identify.
	oh.start = func() error {
		ids.start()
		if len(c.listen) > 0 {
			if err := sw.Listen(c.listen...); err != nil {
				return fmt.Errorf("p2p: host: listen on %v: %w", c.listen, err)
			}
		}
		return nil
	}
	return oh, nil
}

// userAgent is what identify tells peers this node runs.
const userAgent = "edge-agent"

// ownedHost closes the parts basichost does not own after the host itself.
type ownedHost struct {
	host.Host
	closers []func() error
	start   func() error
}

func (h *ownedHost) Close() error {
	err := h.Host.Close()
	for _, c := range h.closers {
		_ = c()
	}
	return err
}

var _ network.Network = (*swarm.Swarm)(nil)
