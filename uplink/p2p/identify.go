package p2p

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	mstream "github.com/multiformats/go-multistream"
	"google.golang.org/protobuf/encoding/protowire"
)

// The libp2p identify protocol (github.com/libp2p/specs, identify/README.md),
// both sides, in what gossip needs: answer a peer's request with our public
// key, listen addresses, protocols and the address we see it at; ask every
// new connection the same and tell pubsub (EvtPeerIdentificationCompleted)
// which protocols the peer speaks; take pushed updates. Every standard
// gossipsub (go, rust, js) opens its stream to a peer only once identify
// says the peer speaks it.
//
// go-libp2p's own identify package does this and more (signed peer
// records, pushing our own changes, observed-address bookkeeping, rate
// limits) for about 130 KiB more on arm64. Our protocols and addresses are
// fixed before the host starts, so there is nothing to push, and a signed
// peer record would name no address (the blank host seals it before it
// listens).
const (
	identifyID     protocol.ID = "/ipfs/id/1.0.0"
	identifyPushID protocol.ID = "/ipfs/id/push/1.0.0"
)

// legacyProtocols are what edge-agent nodes without identify spoke.
var legacyProtocols = []protocol.ID{"/meshsub/1.3.0", "/meshsub/1.2.0", "/meshsub/1.1.0", DirectProtocol}

const (
	identifyTimeout = 30 * time.Second
	// maxIdentifyMsg bounds one identify message (go-libp2p caps its own at
	// 4 KiB and reads up to 8 KiB; signed records of many addresses are
	// the big part).
	maxIdentifyMsg = 8 << 10
	// maxIdentifyMsgs bounds the messages of one response (go-libp2p may
	// split one in two).
	maxIdentifyMsgs = 10
	// maxOwnIdentifyAddrs bounds the listen addresses in our own message,
	// in bytes, leaving room for the protocols.
	maxOwnIdentifyAddrs = 3 << 10
	// identifyProtocolVersion is what go-libp2p and js-libp2p send.
	identifyProtocolVersion = "ipfs/0.1.0"
)

// identify fields (identify.proto).
const (
	idPublicKey       = 1
	idListenAddrs     = 2
	idProtocols       = 3
	idObservedAddr    = 4
	idProtocolVersion = 5
	idAgentVersion    = 6
)

type identifier struct {
	h         host.Host
	agent     string
	done      chan struct{} // closed by close: stops new work
	wg        sync.WaitGroup
	mu        sync.Mutex // guards closed and wg.Add against close
	closed    bool
	completed event.Emitter
	failed    event.Emitter
	updated   event.Emitter
}

func newIdentifier(h host.Host, agent string) (*identifier, error) {
	id := &identifier{h: h, agent: agent, done: make(chan struct{})}
	var err error
	if id.completed, err = h.EventBus().Emitter(new(event.EvtPeerIdentificationCompleted)); err != nil {
		return nil, fmt.Errorf("identify: %w", err)
	}
	if id.failed, err = h.EventBus().Emitter(new(event.EvtPeerIdentificationFailed)); err != nil {
		id.completed.Close()
		return nil, fmt.Errorf("identify: %w", err)
	}
	if id.updated, err = h.EventBus().Emitter(new(event.EvtPeerProtocolsUpdated)); err != nil {
		id.completed.Close()
		id.failed.Close()
		return nil, fmt.Errorf("identify: %w", err)
	}
	return id, nil
}

// start answers requests and pushes, and identifies every connection made
// from now on. Call it before the host listens or dials.
func (id *identifier) start() {
	id.h.SetStreamHandler(identifyID, id.answer)
	id.h.SetStreamHandler(identifyPushID, id.takePush)
	id.h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) { id.goIdentify(c) }})
}

// goIdentify asks c's peer who it is, on a goroutine close waits for.
func (id *identifier) goIdentify(c network.Conn) {
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.closed {
		return
	}
	id.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), identifyTimeout)
		defer cancel()
		go func() {
			select {
			case <-id.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		p := c.RemotePeer()
		protos, err := id.ask(ctx, c)
		if errors.As(err, new(mstream.ErrNotSupported[protocol.ID])) {
			// Every standard libp2p node speaks identify; a peer that does
			// not is an edge-agent node from before identify (which assumed
			// every peer gossips). Assume the same of it, or this node
			// would never send it anything until it is upgraded: pubsub
			// negotiates the stream anyway. Its collectors took direct
			// re-sends too.
			_ = id.h.Peerstore().AddProtocols(p, legacyProtocols...)
			_ = id.completed.Emit(event.EvtPeerIdentificationCompleted{Peer: p, Conn: c, Protocols: legacyProtocols})
			return
		}
		if err != nil {
			if !c.IsClosed() {
				_ = id.failed.Emit(event.EvtPeerIdentificationFailed{Peer: p, Reason: err})
			}
			return
		}
		_ = id.completed.Emit(event.EvtPeerIdentificationCompleted{Peer: p, Conn: c, Protocols: protos})
	})
}

func (id *identifier) ask(ctx context.Context, c network.Conn) ([]protocol.ID, error) {
	s, err := id.h.NewStream(network.WithNoDial(ctx, "identify"), c.RemotePeer(), identifyID)
	if err != nil {
		return nil, fmt.Errorf("identify: open stream: %w", err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	protos, err := id.read(s, false)
	if err != nil {
		_ = s.Reset()
		return nil, err
	}
	return protos, nil
}

// read takes identify messages until EOF and records what they say about
// the stream's peer. A push that names no protocols leaves them as they
// were.
func (id *identifier) read(s network.Stream, push bool) ([]protocol.ID, error) {
	p := s.Conn().RemotePeer()
	br := bufio.NewReader(io.LimitReader(s, maxIdentifyMsgs*(maxIdentifyMsg+3)))
	var (
		protos []protocol.ID
		addrs  []ma.Multiaddr
		got    bool
	)
	for range maxIdentifyMsgs {
		size, err := binary.ReadUvarint(br)
		if errors.Is(err, io.EOF) && got {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("identify: read: %w", err)
		}
		if size > maxIdentifyMsg {
			return nil, fmt.Errorf("identify: message of %d bytes exceeds %d", size, maxIdentifyMsg)
		}
		msg := make([]byte, size)
		if _, err := io.ReadFull(br, msg); err != nil {
			return nil, fmt.Errorf("identify: read: %w", err)
		}
		ps, as, err := parseIdentify(msg, p)
		if err != nil {
			return nil, err
		}
		protos, addrs, got = append(protos, ps...), append(addrs, as...), true
	}
	slices.Sort(protos)
	protos = slices.Compact(protos)
	if len(protos) > 0 || !push {
		if err := id.h.Peerstore().SetProtocols(p, protos...); err != nil {
			return nil, fmt.Errorf("identify: %w", err)
		}
	}
	id.h.Peerstore().AddAddrs(p, addrs, peerstore.ConnectedAddrTTL)
	return protos, nil
}

// parseIdentify returns the protocols and listen addresses in one identify
// message, and checks that a public key in it is p's.
func parseIdentify(b []byte, p peer.ID) ([]protocol.ID, []ma.Multiaddr, error) {
	var (
		protos []protocol.ID
		addrs  []ma.Multiaddr
	)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, nil, fmt.Errorf("identify: malformed message: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, nil, fmt.Errorf("identify: malformed message: %w", protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, nil, fmt.Errorf("identify: malformed message: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch num {
		case idProtocols:
			protos = append(protos, protocol.ID(v))
		case idListenAddrs:
			if a, err := ma.NewMultiaddrBytes(v); err == nil {
				addrs = append(addrs, a)
			}
		case idPublicKey:
			pub, err := crypto.UnmarshalPublicKey(v)
			if err != nil {
				return nil, nil, fmt.Errorf("identify: public key: %w", err)
			}
			if !p.MatchesPublicKey(pub) {
				return nil, nil, fmt.Errorf("identify: public key is not that of %s", p)
			}
		}
	}
	return protos, addrs, nil
}

// answer writes our identify message on a peer's request.
func (id *identifier) answer(s network.Stream) {
	defer s.Close()
	_ = s.SetWriteDeadline(time.Now().Add(identifyTimeout))
	msg, err := id.message(s.Conn())
	if err == nil {
		_, err = s.Write(protowire.AppendBytes(nil, msg))
	}
	if err != nil {
		_ = s.Reset()
	}
}

func (id *identifier) message(c network.Conn) ([]byte, error) {
	pub, err := crypto.MarshalPublicKey(id.h.Peerstore().PubKey(id.h.ID()))
	if err != nil {
		return nil, fmt.Errorf("identify: %w", err)
	}
	b := protowire.AppendTag(nil, idPublicKey, protowire.BytesType)
	b = protowire.AppendBytes(b, pub)
	for _, a := range id.h.Addrs() {
		if len(b) > maxOwnIdentifyAddrs {
			break // many interfaces: peers read 8 KiB at most
		}
		b = protowire.AppendTag(b, idListenAddrs, protowire.BytesType)
		b = protowire.AppendBytes(b, a.Bytes())
	}
	protos := id.h.Mux().Protocols()
	slices.Sort(protos)
	for _, p := range protos {
		b = protowire.AppendTag(b, idProtocols, protowire.BytesType)
		b = protowire.AppendString(b, string(p))
	}
	b = protowire.AppendTag(b, idObservedAddr, protowire.BytesType)
	b = protowire.AppendBytes(b, c.RemoteMultiaddr().Bytes())
	b = protowire.AppendTag(b, idProtocolVersion, protowire.BytesType)
	b = protowire.AppendString(b, identifyProtocolVersion)
	b = protowire.AppendTag(b, idAgentVersion, protowire.BytesType)
	b = protowire.AppendString(b, id.agent)
	return b, nil
}

// takePush records what a peer pushes when its protocols or addresses
// change, and tells pubsub about protocols it added.
func (id *identifier) takePush(s network.Stream) {
	defer s.Close()
	_ = s.SetReadDeadline(time.Now().Add(identifyTimeout))
	p := s.Conn().RemotePeer()
	before, _ := id.h.Peerstore().GetProtocols(p)
	protos, err := id.read(s, true)
	if err != nil || len(protos) == 0 {
		if err != nil {
			_ = s.Reset()
		}
		return
	}
	var added, removed []protocol.ID
	for _, q := range protos {
		if !slices.Contains(before, q) {
			added = append(added, q)
		}
	}
	for _, q := range before {
		if !slices.Contains(protos, q) {
			removed = append(removed, q)
		}
	}
	if len(added) > 0 || len(removed) > 0 {
		_ = id.updated.Emit(event.EvtPeerProtocolsUpdated{Peer: p, Added: added, Removed: removed})
	}
}

func (id *identifier) close() error {
	id.mu.Lock()
	if !id.closed {
		id.closed = true
		close(id.done)
	}
	id.mu.Unlock()
	id.wg.Wait()
	return errors.Join(id.completed.Close(), id.failed.Close(), id.updated.Close())
}
