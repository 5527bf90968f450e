package p2p

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/edge-agent/edge-agent/attest"
)

// DirectProtocol carries records straight to a connected collector. Gossip
// is the first delivery; this is the repair path for records a collector
// has not receipted (it was down, or dropped them under load). Gossip
// cannot repair: every node remembers the message id and drops the same
// bytes again until its seen cache forgets them, a minute or more later.
//
// The stream is a sequence of uvarint-length-prefixed records, written by
// the device and closed; no answer: receipts come back over gossip as
// usual. Every record is validated like a gossiped one, and a stream with
// a bad record is reset.
const DirectProtocol protocol.ID = "/edge-agent/records/1"

// maxDirectRecords bounds one stream.
const maxDirectRecords = 4096

func (n *Node) handleDirect(s network.Stream) {
	defer s.Close()
	_ = s.SetReadDeadline(time.Now().Add(time.Minute))
	from := s.Conn().RemotePeer()
	br := bufio.NewReader(s)
	for i := 0; i < maxDirectRecords; i++ {
		size, err := binary.ReadUvarint(br)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil || size > attest.MaxRecordSize {
			_ = s.Reset()
			return
		}
		raw := make([]byte, size)
		if _, err := io.ReadFull(br, raw); err != nil {
			_ = s.Reset()
			return
		}
		v, rec, err := n.o.Checker.Check(raw)
		switch v {
		case Accept:
			n.accepted.Add(1)
			n.o.OnRecord(rec, from)
		case Ignore:
			n.ignored.Add(1)
		default:
			n.rejected.Add(1)
			n.log.Warn("rejecting direct record; closing the stream", "from", from, "err", err)
			_ = s.Reset()
			return
		}
	}
	_ = s.Reset()
}

// speaksDirect says whether identify found that p accepts DirectProtocol
// streams. A collector built on a standard libp2p stack does not.
func (n *Node) speaksDirect(p peer.ID) bool {
	ps, err := n.h.Peerstore().SupportsProtocols(p, DirectProtocol)
	return err == nil && len(ps) > 0
}

// SendDirect writes records to peer p over DirectProtocol, if connected.
func (n *Node) SendDirect(ctx context.Context, p peer.ID, records [][]byte) error {
	if n.h.Network().Connectedness(p) != network.Connected {
		return fmt.Errorf("p2p: send to %s: not connected", p)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := n.h.NewStream(network.WithNoDial(ctx, "direct records"), p, DirectProtocol)
	if err != nil {
		return fmt.Errorf("p2p: send to %s: open stream: %w", p, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetWriteDeadline(dl)
	}
	bw := bufio.NewWriter(s)
	var hdr [binary.MaxVarintLen64]byte
	for _, r := range records[:min(len(records), maxDirectRecords)] {
		k := binary.PutUvarint(hdr[:], uint64(len(r)))
		if _, err := bw.Write(hdr[:k]); err != nil {
			_ = s.Reset()
			return fmt.Errorf("p2p: send to %s: %w", p, err)
		}
		if _, err := bw.Write(r); err != nil {
			_ = s.Reset()
			return fmt.Errorf("p2p: send to %s: %w", p, err)
		}
	}
	if err := bw.Flush(); err != nil {
		_ = s.Reset()
		return fmt.Errorf("p2p: send to %s: %w", p, err)
	}
	return s.Close()
}
