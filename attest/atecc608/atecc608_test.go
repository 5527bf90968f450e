package atecc608

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"math/big"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"

	"github.com/edge-agent/edge-agent/attest"
)

const addr = 0x60

// frame is a response as the chip sends it: count, data, CRC-16 low first.
func frame(data ...byte) []byte {
	b := append([]byte{byte(len(data) + 3)}, data...)
	return appendCRC(b, 0)
}

// cmd is a command packet as the driver must send it.
func cmd(op, p1 byte, p2 uint16, data ...byte) []byte {
	b := append([]byte{wordCommand, byte(7 + len(data)), op, p1, byte(p2), byte(p2 >> 8)}, data...)
	return appendCRC(b, 1)
}

// wakeOps is the wake sequence: the SDA-low pulse, then the 0x11 status.
func wakeOps() []i2ctest.IO {
	return []i2ctest.IO{{Addr: 0, W: []byte{0}}, {Addr: addr, R: []byte{0x04, 0x11, 0x33, 0x43}}}
}

// respond is the two reads of one response: the count byte, then the rest.
func respond(f []byte) []i2ctest.IO {
	return []i2ctest.IO{{Addr: addr, R: f[:1]}, {Addr: addr, R: f[1:]}}
}

func exchange(w []byte, resp []byte) []i2ctest.IO {
	return append([]i2ctest.IO{{Addr: addr, W: w}}, respond(resp)...)
}

var sleepOp = i2ctest.IO{Addr: addr, W: []byte{wordSleep}}

// nackBus plays a transcript and NACKs the transactions at the given indices
// (after checking they carried the expected bytes): a busy chip does not
// acknowledge its address.
type nackBus struct {
	*i2ctest.Playback
	nack map[int]bool
}

func (b *nackBus) Tx(a uint16, w, r []byte) error {
	i := b.Count
	if err := b.Playback.Tx(a, w, r); err != nil {
		return err
	}
	if b.nack[i] {
		return errors.New("i2c: remote I/O error (NACK)")
	}
	return nil
}

func newDev(t *testing.T, ops []i2ctest.IO, nack ...int) (*Dev, func()) {
	t.Helper()
	pb := &i2ctest.Playback{Ops: ops, DontPanic: true}
	bus := &nackBus{Playback: pb, nack: map[int]bool{}}
	for _, n := range nack {
		bus.nack[n] = true
	}
	d, err := New(bus, &Opts{Addr: addr, Slot: 0, Retries: 5, Sleep: func(time.Duration) {}})
	if err != nil {
		t.Fatal(err)
	}
	return d, func() {
		t.Helper()
		if err := pb.Close(); err != nil {
			t.Errorf("transcript not fully played: %v", err)
		}
	}
}

// TestCRC16 checks the chip's CRC against the wake response the datasheet
// prints (04 11 33 43) and a status-OK frame (04 00 03 40).
func TestCRC16(t *testing.T) {
	for _, tt := range []struct {
		in   []byte
		want uint16
	}{
		{[]byte{0x04, 0x11}, 0x4333},
		{[]byte{0x04, 0x00}, 0x4003},
	} {
		if got := CRC16(tt.in); got != tt.want {
			t.Errorf("CRC16(% x) = %#04x, want %#04x", tt.in, got, tt.want)
		}
	}
}

// infoOps is Info (revision 608B) and the two lock-byte reads.
func infoOps(lockValue, lockConfig byte, slotLocked uint16) []i2ctest.IO {
	var ops []i2ctest.IO
	ops = append(ops, exchange(cmd(opInfo, 0, 0), frame(0x00, 0x00, 0x60, 0x03))...)
	ops = append(ops, exchange(cmd(opRead, 0, 2<<3|5), frame(0x01, 0x00, lockValue, lockConfig))...)
	ops = append(ops, exchange(cmd(opRead, 0, 2<<3|6), frame(byte(slotLocked), byte(slotLocked>>8), 0, 0))...)
	return ops
}

func TestInfoLockState(t *testing.T) {
	for _, tt := range []struct {
		name                       string
		lockValue, lockConfig      byte
		slots                      uint16
		wantConfig, wantData, slot bool
	}{
		{"factory fresh", 0x55, 0x55, 0xffff, false, false, false},
		{"provisioned", 0x00, 0x00, 0xfffe, true, true, true},
		{"config locked only", 0x55, 0x00, 0xffff, true, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ops := append(wakeOps(), infoOps(tt.lockValue, tt.lockConfig, tt.slots)...)
			d, done := newDev(t, append(ops, sleepOp))
			in, err := d.Info()
			if err != nil {
				t.Fatal(err)
			}
			done()
			if in.ConfigLocked != tt.wantConfig || in.DataLocked != tt.wantData || in.SlotLocked != tt.slot || in.Model() != "ATECC608B" {
				t.Fatalf("info %+v (%s)", in, in.Model())
			}
		})
	}
}

// TestGenKeyUnlockedConfig: an unprovisioned chip is reported and left
// alone: after reading the lock bytes the driver sends nothing but sleep.
func TestGenKeyUnlockedConfig(t *testing.T) {
	ops := append(wakeOps(), infoOps(0x55, 0x55, 0xffff)...)
	d, done := newDev(t, append(ops, sleepOp))
	if _, err := d.GenKey(); !errors.Is(err, ErrConfigUnlocked) {
		t.Fatalf("GenKey on an unlocked chip: %v, want ErrConfigUnlocked", err)
	}
	done()
}

func TestGenKeyLockedSlot(t *testing.T) {
	ops := append(wakeOps(), infoOps(0x00, 0x00, 0xfffe)...)
	d, done := newDev(t, append(ops, sleepOp))
	if _, err := d.GenKey(); !errors.Is(err, ErrSlotLocked) {
		t.Fatalf("GenKey on a locked slot: %v, want ErrSlotLocked", err)
	}
	done()
}

func testKey(t *testing.T) (*ecdsa.PrivateKey, []byte) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := k.PublicKey.Bytes()
	return k, raw[1:]
}

func TestGenKeyAndLock(t *testing.T) {
	_, xy := testKey(t)
	ops := append(wakeOps(), infoOps(0x55, 0x00, 0xffff)...)
	ops = append(ops, exchange(cmd(opGenKey, 0x04, 0), frame(xy...))...)
	ops = append(ops, exchange(cmd(opLock, 0x02, 0), frame(0x00))...)
	d, done := newDev(t, append(ops, sleepOp))
	s, err := CreateSigner(d)
	if err != nil {
		t.Fatal(err)
	}
	done()
	if len(s.KeyID()) != attest.P256KeySize || s.DeviceID() == "" {
		t.Fatalf("signer kid %x id %q", s.KeyID(), s.DeviceID())
	}
}

// signOps is Nonce pass-through, idle, wake, Sign.
func signOps(digest, sig []byte) []i2ctest.IO {
	ops := wakeOps()
	ops = append(ops, exchange(cmd(opNonce, 0x03, 0, digest...), frame(0x00))...)
	ops = append(ops, i2ctest.IO{Addr: addr, W: []byte{wordIdle}})
	ops = append(ops, wakeOps()...)
	ops = append(ops, exchange(cmd(opSign, 0x80, 0), frame(sig...))...)
	return append(ops, sleepOp)
}

func ecdsaSign(t *testing.T, k *ecdsa.PrivateKey, digest []byte) []byte {
	r, s, err := ecdsa.Sign(rand.Reader, k, digest)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := attest.ES256Signature(r.Bytes(), s.Bytes())
	return sig
}

// TestSignRecord signs a whole record through the driver (the transcript's
// signature is made by a software key standing in for the chip's) and
// verifies it with attest: digest, packets and r||s plumbing end to end.
func TestSignRecord(t *testing.T) {
	k, xy := testKey(t)
	payload, err := attest.EncodePayload(&attest.Claims{Seq: 1, Kind: "sim.counter", Obs: map[string]uint64{"n": 1}})
	if err != nil {
		t.Fatal(err)
	}
	pubOps := append(wakeOps(), exchange(cmd(opGenKey, 0x00, 0), frame(xy...))...)
	pubOps = append(pubOps, sleepOp)
	d, done := newDev(t, pubOps)
	s, err := NewSigner(d)
	if err != nil {
		t.Fatal(err)
	}
	done()

	// What SignPayload will ask to be signed: the Sig_structure's digest.
	digest := sha256.Sum256(sigStructure(s.KeyID(), payload))
	d2, done2 := newDev(t, signOps(digest[:], ecdsaSign(t, k, digest[:])))
	s.dev = d2
	raw, err := attest.SignPayload(s, payload)
	if err != nil {
		t.Fatal(err)
	}
	done2()
	got, err := attest.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Verify(); err != nil {
		t.Fatalf("record signed through the driver does not verify: %v", err)
	}
}

// sigStructure is RFC 9052 §4.4's ["Signature1", protected, h”, payload]
// for protected {1: -7, 4: kid}, written out by hand.
func sigStructure(kid, payload []byte) []byte {
	prot := append([]byte{0xa2, 0x01, 0x26, 0x04, 0x58, byte(len(kid))}, kid...)
	b := append([]byte{0x84, 0x6a}, "Signature1"...)
	b = append(b, 0x58, byte(len(prot)))
	b = append(b, prot...)
	b = append(b, 0x40)
	if len(payload) < 24 {
		b = append(b, 0x40|byte(len(payload)))
	} else {
		b = append(b, 0x58, byte(len(payload)))
	}
	return append(b, payload...)
}

// TestSignCRCErrorResends: the first Sign response arrives with a broken
// CRC; the driver sends the command again and takes the second.
func TestSignCRCErrorResends(t *testing.T) {
	k, _ := testKey(t)
	digest := sha256.Sum256([]byte("record"))
	sig := ecdsaSign(t, k, digest[:])
	ops := signOps(digest[:], sig)
	bad := frame(sig...)
	bad[len(bad)-1] ^= 0xff
	// Insert the damaged response before the good one: command, bad reply,
	// command again, good reply.
	last := len(ops) - 1 - 3 // the Sign exchange before sleep
	retry := append([]i2ctest.IO{}, ops[:last]...)
	retry = append(retry, exchange(cmd(opSign, 0x80, 0), bad)...)
	retry = append(retry, ops[last:]...)
	d, done := newDev(t, retry)
	got, err := d.Sign(digest[:])
	if err != nil {
		t.Fatal(err)
	}
	done()
	r, s := new(big.Int).SetBytes(got[:32]), new(big.Int).SetBytes(got[32:])
	if !ecdsa.Verify(&k.PublicKey, digest[:], r, s) {
		t.Fatal("signature after the CRC retry does not verify")
	}
}

// TestBusyChipPolled: the chip NACKs the first two reads of the Sign
// response (still computing); the driver polls until it answers.
func TestBusyChipPolled(t *testing.T) {
	k, _ := testKey(t)
	digest := sha256.Sum256([]byte("busy"))
	sig := ecdsaSign(t, k, digest[:])
	ops := signOps(digest[:], sig)
	last := len(ops) - 1 - 3
	countRead := ops[last+1]
	busy := append([]i2ctest.IO{}, ops[:last+1]...)
	busy = append(busy, i2ctest.IO{Addr: addr, R: []byte{0}}, i2ctest.IO{Addr: addr, R: []byte{0}})
	busy = append(busy, countRead)
	busy = append(busy, ops[last+2:]...)
	d, done := newDev(t, busy, last+1, last+2)
	got, err := d.Sign(digest[:])
	if err != nil {
		t.Fatal(err)
	}
	done()
	if len(got) != 64 {
		t.Fatalf("signature %d bytes", len(got))
	}
}

// TestErrorStatus: a Sign the slot's configuration forbids answers 0x0F.
func TestErrorStatus(t *testing.T) {
	digest := sha256.Sum256([]byte("x"))
	ops := wakeOps()
	ops = append(ops, exchange(cmd(opNonce, 0x03, 0, digest[:]...), frame(0x00))...)
	ops = append(ops, i2ctest.IO{Addr: addr, W: []byte{wordIdle}})
	ops = append(ops, wakeOps()...)
	ops = append(ops, exchange(cmd(opSign, 0x80, 0), frame(0x0f))...)
	d, done := newDev(t, append(ops, sleepOp))
	if _, err := d.Sign(digest[:]); !errors.Is(err, ErrStatus) {
		t.Fatalf("Sign: %v, want ErrStatus", err)
	} else {
		t.Log(err)
	}
	done()
}

// fuzzBus answers every read with the next bytes of data.
type fuzzBus struct{ data []byte }

func (b *fuzzBus) String() string { return "fuzz" }
func (b *fuzzBus) Tx(_ uint16, _, r []byte) error {
	n := copy(r, b.data)
	b.data = b.data[n:]
	if n < len(r) {
		return errors.New("short")
	}
	return nil
}
func (b *fuzzBus) SetSpeed(physic.Frequency) error { return nil }

// FuzzResponse: whatever the chip (or a noisy bus) answers, the driver
// returns a result or an error, never panics, and accepts a frame only when
// its CRC holds.
func FuzzResponse(f *testing.F) {
	f.Add(frame(0x00))
	f.Add(frame(make([]byte, 64)...))
	f.Add([]byte{0x04, 0x11, 0x33, 0x43})
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		d, _ := New(&fuzzBus{data: data}, &Opts{Addr: addr, Retries: 2, Sleep: func(time.Duration) {}})
		got, err := d.read(64)
		if err == nil {
			if len(got) != 64 || len(data) < 67 || CRC16(data[:65]) != uint16(data[65])|uint16(data[66])<<8 {
				t.Fatalf("accepted %d bytes from % x", len(got), data)
			}
		}
	})
}
