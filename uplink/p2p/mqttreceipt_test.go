package p2p_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/edge-agent/edge-agent/uplink/p2p"
)

// A receipt over MQTT reads as the one over libp2p: the collector by its
// peer id, the ranges of a chain named twice together, a bad signature
// refused.
func TestOpenMQTTReceipt(t *testing.T) {
	s := newSigner(t, 5)
	key, _ := p2p.HostKey(s)
	id, _ := peer.IDFromPrivateKey(key)
	r := &p2p.Receipt{Network: "test", Collector: id, Device: "12D3KooWdevice", Time: 42, Chains: []p2p.ChainRanges{
		{Chain: [16]byte{1}, Ranges: [][2]uint64{{1, 5}}},
		{Chain: [16]byte{2}, Ranges: [][2]uint64{{3, 3}}},
		{Chain: [16]byte{1}, Ranges: [][2]uint64{{7, 9}}},
	}}
	raw, err := p2p.SignReceipt(key, r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p2p.OpenMQTTReceipt(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[[16]byte][][2]uint64{{1}: {{1, 5}, {7, 9}}, {2}: {{3, 3}}}
	if got.Collector != id.String() || got.Device != r.Device || !reflect.DeepEqual(got.Chains, want) {
		t.Fatalf("got %+v, want collector %s, chains %v", got, id, want)
	}
	raw[len(raw)-1] ^= 1
	if _, err := p2p.OpenMQTTReceipt(raw); !errors.Is(err, p2p.ErrBadReceipt) {
		t.Fatalf("bad signature: err = %v, want ErrBadReceipt", err)
	}
}
