package p2p_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/attesttest"
	"github.com/edge-agent/edge-agent/uplink/p2p"
)

func TestHostKeyIsDeviceID(t *testing.T) {
	s := attesttest.NewSigner(t, 1)
	k, err := p2p.HostKey(s)
	if err != nil {
		t.Fatalf("HostKey: %v", err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if id.String() != s.DeviceID() {
		t.Fatalf("peer id %s, device id %s", id, s.DeviceID())
	}
}

type opaqueSigner struct{ attest.Signer }

func TestHostKeyRefusesOpaqueSigner(t *testing.T) {
	_, err := p2p.HostKey(opaqueSigner{attesttest.NewSigner(t, 2)})
	if !errors.Is(err, p2p.ErrNoHostKey) {
		t.Fatalf("err = %v, want ErrNoHostKey", err)
	}
}

func TestReceiptRoundTrip(t *testing.T) {
	s := attesttest.NewSigner(t, 3)
	key, _ := p2p.HostKey(s)
	id, _ := peer.IDFromPrivateKey(key)
	r := &p2p.Receipt{Network: "test", Collector: id, Device: "12D3KooWdevice", Time: 42,
		Chains: []p2p.ChainRanges{{Chain: [16]byte{1}, Ranges: [][2]uint64{{1, 5}, {7, 7}}}}}
	raw, err := p2p.SignReceipt(key, r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p2p.OpenReceipt(raw)
	if err != nil {
		t.Fatalf("OpenReceipt: %v", err)
	}
	if got.Collector != id || got.Device != r.Device || got.Time != 42 || len(got.Chains) != 1 || got.Chains[0].Ranges[1] != [2]uint64{7, 7} {
		t.Fatalf("round trip: got %+v", got)
	}
	tests := []struct {
		name string
		mut  func([]byte) []byte
	}{
		{"flipped body byte", func(b []byte) []byte { b[10] ^= 1; return b }},
		{"flipped signature byte", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-3] }},
		{"empty", func([]byte) []byte { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := p2p.OpenReceipt(tt.mut(bytes.Clone(raw))); !errors.Is(err, p2p.ErrBadReceipt) {
				t.Fatalf("err = %v, want ErrBadReceipt", err)
			}
		})
	}
}

// A receipt over MQTT reads as the one over libp2p: the collector by its
// peer id, the ranges of a chain named twice together, a bad signature
// refused.
func TestOpenMQTTReceipt(t *testing.T) {
	s := attesttest.NewSigner(t, 5)
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

func TestSeqRanges(t *testing.T) {
	tests := []struct {
		name string
		in   []uint64
		want [][2]uint64
	}{
		{"empty", nil, nil},
		{"one", []uint64{4}, [][2]uint64{{4, 4}}},
		{"unsorted with repeats", []uint64{3, 1, 2, 2, 7, 8, 10}, [][2]uint64{{1, 3}, {7, 8}, {10, 10}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p2p.SeqRanges(tt.in)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestCheckVerdicts(t *testing.T) {
	s := attesttest.NewSigner(t, 4)
	good := chainOf(t, s, [16]byte{9}, 1)[0]
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 0x80 // last signature byte
	now := time.Now()
	future, _ := signOne(t, s, [16]byte{9}, 2, [32]byte{1}, map[string]any{"n": 2})
	tests := []struct {
		name string
		c    p2p.Checker
		raw  []byte
		want p2p.Verdict
	}{
		{"good", p2p.Checker{}, good, p2p.Accept},
		{"bad signature", p2p.Checker{}, bad, p2p.Reject},
		{"garbage", p2p.Checker{}, []byte("hello"), p2p.Reject},
		{"oversized", p2p.Checker{}, make([]byte, attest.MaxRecordSize+1), p2p.Reject},
		{"too far ahead", p2p.Checker{MaxClockSkew: time.Minute, Now: func() time.Time { return now.Add(-time.Hour) }}, future, p2p.Ignore},
		{"within skew", p2p.Checker{MaxClockSkew: time.Minute, Now: func() time.Time { return now }}, future, p2p.Accept},
		{"not allowed", p2p.Checker{Allowed: map[string]bool{"someone-else": true}}, good, p2p.Ignore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := tt.c.Check(tt.raw)
			if got != tt.want {
				t.Fatalf("verdict %v (%v), want %v", got, err, tt.want)
			}
			if (got == p2p.Accept) != (err == nil) {
				t.Fatalf("verdict %v with err %v", got, err)
			}
		})
	}
}

func FuzzValidate(f *testing.F) {
	s := attesttest.NewSigner(f, 5)
	for _, r := range chainOf(f, s, [16]byte{1}, 2) {
		f.Add(r)
		b := bytes.Clone(r)
		b[len(b)/2] ^= 1
		f.Add(b)
	}
	f.Add([]byte{0xd2, 0x84})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var c p2p.Checker
		v, rec, err := c.Check(raw)
		if v != p2p.Accept {
			if err == nil {
				t.Fatalf("verdict %v without a reason", v)
			}
			return
		}
		// Accepted: it must decode and verify independently.
		r, derr := attest.Decode(raw)
		if derr != nil || r.Verify() != nil || rec == nil || !bytes.Equal(rec.Raw, raw) {
			t.Fatalf("accepted bytes that do not verify: decode %v", derr)
		}
	})
}

// node starts a Node on loopback and stops it at the end of the test.
func node(tb testing.TB, seed byte, boot []string, onRecord func(*attest.Record, peer.ID)) *p2p.Node {
	tb.Helper()
	key, err := p2p.HostKey(attesttest.NewSigner(tb, seed))
	if err != nil {
		tb.Fatal(err)
	}
	n, err := p2p.NewNode(p2p.NodeOpts{Key: key, Network: "test", Listen: []string{"/ip4/127.0.0.1/tcp/0"},
		Bootstrap: boot, OnRecord: onRecord, ScoreInterval: 100 * time.Millisecond, BackoffMin: 50 * time.Millisecond})
	if err != nil {
		tb.Fatalf("NewNode: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	return n
}

// TestCheckHardwareKeyRecords: the validator accepts ES256 records and
// session records, and rejects a session record whose binding does not
// cover it.
func TestCheckHardwareKeyRecords(t *testing.T) {
	d := bytes.Repeat([]byte{3}, 32)
	hw, err := attesttest.NewES256(d)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	boot := bytes.Repeat([]byte{1}, 16)
	c := attest.Claims{Chain: [16]byte{9}, Seq: 1, Time: now.UnixNano(), Kind: "sim.counter", Obs: map[string]int{"n": 1}, Boot: boot}
	p, _ := attest.EncodePayload(&c)
	direct, err := attest.SignPayload(hw, p)
	if err != nil {
		t.Fatal(err)
	}
	ss := attest.NewSessionSigner(hw, nil)
	if _, err := ss.Rotate(rand.Reader, attest.BindingClaims{Chain: c.Chain, Boot: boot, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	session, err := attest.SignPayload(ss, p)
	if err != nil {
		t.Fatal(err)
	}
	other := attest.NewSessionSigner(hw, nil)
	other.Rotate(rand.Reader, attest.BindingClaims{Chain: [16]byte{8}, Boot: boot, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)})
	wrongChain, _ := attest.SignPayload(other, p)
	for _, tt := range []struct {
		name string
		raw  []byte
		want p2p.Verdict
	}{
		{"es256", direct, p2p.Accept},
		{"session", session, p2p.Accept},
		{"binding for another chain", wrongChain, p2p.Reject},
	} {
		var chk p2p.Checker
		got, rec, err := chk.Check(tt.raw)
		if got != tt.want {
			t.Errorf("%s: verdict %v (%v), want %v", tt.name, got, err, tt.want)
		}
		if got == p2p.Accept && rec.DeviceID != hw.DeviceID() {
			t.Errorf("%s: device %s, want %s", tt.name, rec.DeviceID, hw.DeviceID())
		}
	}
}

// TestHardwareHostKey: a device whose key is in hardware (here a software
// ES256 stand-in that counts its signatures) is its own libp2p host: the
// peer ID is the device id, and the Noise handshake signs through the key.
func TestHardwareHostKey(t *testing.T) {
	hw, err := attesttest.NewES256(bytes.Repeat([]byte{6}, 32))
	if err != nil {
		t.Fatal(err)
	}
	ss := attest.NewSessionSigner(hw, nil) // as the agent wires it
	key, err := p2p.HostKey(ss)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := key.Raw(); err == nil {
		t.Fatal("a hardware host key exported its private key")
	}
	a := node(t, 21, nil, nil)
	n, err := p2p.NewNode(p2p.NodeOpts{Key: key, Network: "test", Bootstrap: a.Addrs(), BackoffMin: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if n.ID().String() != hw.DeviceID() {
		t.Fatalf("peer id %s, device id %s", n.ID(), hw.DeviceID())
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(n.RecordPeers()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the hardware-keyed node never joined the topic")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if hw.Count.Load() == 0 {
		t.Fatal("the handshake did not sign with the hardware key")
	}
}
