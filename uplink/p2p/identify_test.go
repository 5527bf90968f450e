package p2p

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/condtest"
)

// identifyMsg builds an identify message the way go-libp2p and js-libp2p
// lay it out, with an unknown varint field (a newer peer's) thrown in.
func identifyMsg(tb testing.TB, pub crypto.PubKey, protos []string, addrs []string) []byte {
	tb.Helper()
	k, err := crypto.MarshalPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	b := protowire.AppendTag(nil, idPublicKey, protowire.BytesType)
	b = protowire.AppendBytes(b, k)
	for _, a := range addrs {
		b = protowire.AppendTag(b, idListenAddrs, protowire.BytesType)
		b = protowire.AppendBytes(b, ma.StringCast(a).Bytes())
	}
	for _, p := range protos {
		b = protowire.AppendTag(b, idProtocols, protowire.BytesType)
		b = protowire.AppendString(b, p)
	}
	b = protowire.AppendTag(b, 99, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	b = protowire.AppendTag(b, idAgentVersion, protowire.BytesType)
	return protowire.AppendString(b, "go-libp2p/0.51.0")
}

func TestParseIdentify(t *testing.T) {
	_, pub, _ := crypto.GenerateEd25519Key(nil)
	id, _ := peer.IDFromPublicKey(pub)
	_, other, _ := crypto.GenerateEd25519Key(nil)
	otherID, _ := peer.IDFromPublicKey(other)
	msg := identifyMsg(t, pub, []string{"/meshsub/1.2.0", "/ipfs/id/1.0.0"}, []string{"/ip4/127.0.0.1/tcp/4001"})
	protos, addrs, err := parseIdentify(msg, id)
	if err != nil {
		t.Fatalf("parseIdentify: %v", err)
	}
	if !slices.Equal(protos, []protocol.ID{"/meshsub/1.2.0", "/ipfs/id/1.0.0"}) || len(addrs) != 1 || addrs[0].String() != "/ip4/127.0.0.1/tcp/4001" {
		t.Fatalf("got protocols %v, addrs %v", protos, addrs)
	}
	if _, _, err := parseIdentify(msg, otherID); err == nil {
		t.Fatal("a message carrying another peer's key was accepted")
	}
	for _, cut := range []int{1, 3, len(msg) - 1} {
		if _, _, err := parseIdentify(msg[:cut], id); err == nil {
			t.Errorf("message cut at %d of %d bytes was accepted", cut, len(msg))
		}
	}
}

func FuzzParseIdentify(f *testing.F) {
	_, pub, _ := crypto.GenerateEd25519Key(nil)
	id, _ := peer.IDFromPublicKey(pub)
	f.Add(identifyMsg(f, pub, []string{"/meshsub/1.1.0"}, []string{"/ip4/10.0.0.1/tcp/1"}))
	f.Add([]byte{0x1a, 0x03, 'a', 'b', 'c'})
	f.Fuzz(func(t *testing.T, b []byte) {
		protos, _, err := parseIdentify(b, id)
		if err != nil {
			return
		}
		// Re-encoding what was parsed parses to the same protocols.
		var again []byte
		for _, p := range protos {
			again = protowire.AppendTag(again, idProtocols, protowire.BytesType)
			again = protowire.AppendString(again, string(p))
		}
		got, _, err := parseIdentify(again, id)
		if err != nil || !slices.Equal(got, protos) {
			t.Fatalf("protocols %q re-parse as %q (%v)", protos, got, err)
		}
	})
}

// TestPeerWithoutIdentify: an edge-agent node from before identify (it
// answers no identify request, but gossips) still gets what this node
// publishes, as it did when every node assumed every peer gossips.
func TestPeerWithoutIdentify(t *testing.T) {
	var got atomic.Int32
	legacy := testNode(t, nil, func(*attest.Record, peer.ID) { got.Add(1) })
	legacy.h.RemoveStreamHandler(identifyID) // before anyone connects
	dev := testNode(t, legacy.Addrs(), nil)
	condtest.WaitFor(t, 20*time.Second, "the device to see the old node on the record topic", func() bool { return len(dev.RecordPeers()) == 1 })
	s, err := attest.CreateKey("file:"+t.TempDir()+"/k", throwawayKeySeed())
	if err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	// Each try a new record: a repeat of the same bytes would be dropped as
	// already seen.
	condtest.WaitFor(t, 20*time.Second, "the old node to receive a record from the device", func() bool {
		seq++
		p, err := attest.EncodePayload(&attest.Claims{Chain: [16]byte{2}, Seq: seq, Prev: [32]byte{byte(min(seq-1, 1))}, Time: time.Now().UnixNano(),
			Kind: "test.count", Source: "t", Obs: map[string]any{"n": seq}})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := attest.SignPayload(s, p)
		if err != nil {
			t.Fatal(err)
		}
		_ = dev.PublishRecord(context.Background(), raw)
		return got.Load() > 0
	})
}
