// Package atecc608 drives a Microchip ATECC608 secure element over I²C: the
// few commands a device identity needs (Info, Read of the configuration
// zone's lock bytes, Nonce, GenKey, Sign, Lock of one slot), with the chip's
// CRC-16, its wake/idle/sleep protocol and retries while it is busy.
//
// Sources: the ATECC608A/B datasheets' public I²C interface and command
// chapters (command packet and response formats, opcodes, status codes,
// execution times) and the configuration zone map. The driver never writes
// the configuration zone: a chip comes configured and locked from its
// maker's provisioning (Microchip Trust&GO/TrustFLEX or a factory tool), and
// an unlocked chip is reported, not configured.
//
// A Dev serialises its commands; it is safe for concurrent use.
package atecc608

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"io"

	"errors"
	"fmt"
	"github.com/edge-agent/edge-agent/attest"
	"github.com/veraison/go-cose"
	"sync"
	"time"

	"periph.io/x/conn/v3/i2c"
)

// Opts configures a Dev.
type Opts struct {
	Addr uint16 // 7-bit I²C address; 0x60 as shipped (0xC0 in Microchip's 8-bit notation)
	Slot int    // key slot 0..15 holding the P-256 private key
	// Retries bounds how often a command is polled while the chip is busy
	// and resent after a CRC error.
	Retries int
	// Sleep replaces time.Sleep (tests pass a no-op).
	Sleep func(time.Duration)
}

// DefaultOpts is the factory address and slot 0.
var DefaultOpts = Opts{Addr: 0x60, Slot: 0, Retries: 20}

// Errors, each returned wrapped with the command it concerns.
var (
	// ErrCRC is returned when responses kept failing their CRC after all
	// retries (noise on the bus, a loose wire).
	ErrCRC = errors.New("atecc608: response CRC mismatch")
	// ErrBusy is returned when the chip did not answer within the retries.
	ErrBusy = errors.New("atecc608: chip busy or not answering")
	// ErrStatus is returned when the chip answered with an error status.
	ErrStatus = errors.New("atecc608: chip returned an error status")
	// ErrConfigUnlocked is returned by GenKey when the configuration zone is
	// not locked: keys cannot be made until the chip is provisioned, and
	// this driver does not write the configuration.
	ErrConfigUnlocked = errors.New("atecc608: configuration zone is unlocked")
	// ErrSlotLocked is returned by GenKey when the slot is locked: its key is
	// permanent.
	ErrSlotLocked = errors.New("atecc608: key slot is locked")
)

// Word addresses (datasheet §6.2, I/O blocks).
const (
	wordSleep   = 0x01
	wordIdle    = 0x02
	wordCommand = 0x03
)

// Opcodes (datasheet Table "Command opcodes").
const (
	opRead   = 0x02
	opNonce  = 0x16
	opLock   = 0x17
	opInfo   = 0x30
	opGenKey = 0x40
	opSign   = 0x41
)

// Maximum execution times (datasheet Table "Command execution times",
// ATECC608 column, rounded up).
var execTime = map[byte]time.Duration{
	opRead: 2 * time.Millisecond, opNonce: 8 * time.Millisecond, opLock: 35 * time.Millisecond,
	opInfo: 2 * time.Millisecond, opGenKey: 120 * time.Millisecond, opSign: 70 * time.Millisecond,
}

// Status codes in a 4-byte response (datasheet "Status/Error codes").
var statusText = map[byte]string{
	0x01: "checkmac or verify miscompare",
	0x03: "parse error (bad opcode, mode or parameter)",
	0x05: "ECC fault",
	0x07: "self test error",
	0x08: "health test error",
	0x0F: "execution error (the slot's configuration forbids it, or the zone is not locked)",
	0x11: "woken, no command yet",
	0xEE: "watchdog about to expire",
	0xFF: "CRC or other communication error",
}

// Dev is one ATECC608 on a bus.
type Dev struct {
	bus  i2c.Bus
	opts Opts
	mu   sync.Mutex
}

// New returns a Dev; it does not talk to the chip.
func New(bus i2c.Bus, o *Opts) (*Dev, error) {
	if o == nil {
		o = &DefaultOpts
	}
	opts := *o
	if opts.Addr == 0 || opts.Addr > 0x7f {
		return nil, fmt.Errorf("atecc608: address %#x is not a 7-bit I²C address", opts.Addr)
	}
	if opts.Slot < 0 || opts.Slot > 15 {
		return nil, fmt.Errorf("atecc608: slot %d is not 0..15", opts.Slot)
	}
	if opts.Retries <= 0 {
		opts.Retries = DefaultOpts.Retries
	}
	if opts.Sleep == nil {
		opts.Sleep = time.Sleep
	}
	return &Dev{bus: bus, opts: opts}, nil
}

func (d *Dev) String() string {
	return fmt.Sprintf("ATECC608 at %#x slot %d on %s", d.opts.Addr, d.opts.Slot, d.bus)
}

// CRC16 is the chip's checksum: polynomial 0x8005, zero initial value, data
// bits taken least significant first, no final reflection (datasheet
// "CRC-16 calculation"). It covers the count byte through the last data
// byte and is sent low byte first.
func CRC16(data []byte) uint16 {
	var crc uint16
	for _, b := range data {
		for bit := byte(1); bit != 0; bit <<= 1 {
			dataBit := b&bit != 0
			crcBit := crc&0x8000 != 0
			crc <<= 1
			if dataBit != crcBit {
				crc ^= 0x8005
			}
		}
	}
	return crc
}

func appendCRC(b []byte, from int) []byte {
	c := CRC16(b[from:])
	return append(b, byte(c), byte(c>>8))
}

// wake holds SDA low long enough (tWLO ≥ 60 µs: one zero byte to the
// general-call address at 100 kHz does it; the chip does not ack it) and
// then reads the wake status, 0x11.
func (d *Dev) wake() error {
	var err error
	for try := 0; try < d.opts.Retries; try++ {
		_ = d.bus.Tx(0x00, []byte{0x00}, nil) // NACKed by design
		d.opts.Sleep(1500 * time.Microsecond) // tWHI
		var r [4]byte
		if err = d.bus.Tx(d.opts.Addr, nil, r[:]); err != nil {
			err = fmt.Errorf("%w: no answer to wake at %#x: %v", ErrBusy, d.opts.Addr, err)
			continue
		}
		if err = checkFrame(r[:]); err != nil {
			continue
		}
		if r[1] != 0x11 {
			return fmt.Errorf("%w: wake answered %#x, want 0x11", ErrStatus, r[1])
		}
		return nil
	}
	return fmt.Errorf("atecc608: wake: %w", err)
}

// idle keeps TempKey (a Nonce for the next Sign); sleep clears it and saves
// power.
func (d *Dev) idle() error  { return d.bus.Tx(d.opts.Addr, []byte{wordIdle}, nil) }
func (d *Dev) sleep() error { return d.bus.Tx(d.opts.Addr, []byte{wordSleep}, nil) }

func checkFrame(r []byte) error {
	if len(r) < 4 || int(r[0]) != len(r) {
		return fmt.Errorf("%w: frame count %d for a %d-byte read", ErrCRC, firstByte(r), len(r))
	}
	n := len(r)
	if c := CRC16(r[:n-2]); byte(c) != r[n-2] || byte(c>>8) != r[n-1] {
		return fmt.Errorf("%w: got %02x%02x, computed %04x", ErrCRC, r[n-2], r[n-1], c)
	}
	return nil
}

func firstByte(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// command sends one command and returns its response data (want bytes).
// A busy chip NACKs its address: the read is polled. A CRC error (either
// way: the chip answers 0xFF to a command that arrived damaged) resends.
func (d *Dev) command(op, p1 byte, p2 uint16, data []byte, want int) ([]byte, error) {
	pkt := []byte{wordCommand, byte(7 + len(data)), op, p1, byte(p2), byte(p2 >> 8)}
	pkt = append(pkt, data...)
	pkt = appendCRC(pkt, 1)
	var lastErr error
	for try := 0; try < d.opts.Retries; try++ {
		if err := d.bus.Tx(d.opts.Addr, pkt, nil); err != nil {
			lastErr = fmt.Errorf("%w: send: %v", ErrBusy, err)
			d.opts.Sleep(time.Millisecond)
			continue
		}
		d.opts.Sleep(execTime[op])
		resp, err := d.read(want)
		if errors.Is(err, ErrCRC) || isStatus(err, 0xFF) {
			lastErr = err
			continue // resend
		}
		return resp, err
	}
	return nil, lastErr
}

// read polls for the response: count byte first, then the rest.
func (d *Dev) read(want int) ([]byte, error) {
	var n [1]byte
	var err error
	for try := 0; ; try++ {
		if err = d.bus.Tx(d.opts.Addr, nil, n[:]); err == nil {
			break
		}
		if try >= d.opts.Retries {
			return nil, fmt.Errorf("%w: %v", ErrBusy, err)
		}
		d.opts.Sleep(2 * time.Millisecond) // still executing
	}
	if n[0] < 4 || n[0] > 3+64 {
		return nil, fmt.Errorf("%w: count byte %d", ErrCRC, n[0])
	}
	r := make([]byte, n[0])
	r[0] = n[0]
	if err := d.bus.Tx(d.opts.Addr, nil, r[1:]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBusy, err)
	}
	if err := checkFrame(r); err != nil {
		return nil, err
	}
	data := r[1 : len(r)-2]
	if len(data) == 1 && want != 1 {
		if data[0] == 0x00 && want == 0 {
			return nil, nil
		}
		return nil, &statusError{code: data[0]}
	}
	if len(data) != want {
		return nil, fmt.Errorf("atecc608: response of %d bytes, want %d", len(data), want)
	}
	return data, nil
}

type statusError struct{ code byte }

func (e *statusError) Error() string {
	t := statusText[e.code]
	if t == "" {
		t = "unknown status"
	}
	return fmt.Sprintf("%v %#02x: %s", ErrStatus, e.code, t)
}

func (e *statusError) Unwrap() error { return ErrStatus }

func isStatus(err error, code byte) bool {
	var s *statusError
	return errors.As(err, &s) && s.code == code
}

// session wakes the chip, runs f, and puts the chip to sleep whatever f did.
func (d *Dev) session(f func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.wake(); err != nil {
		return err
	}
	err := f()
	if serr := d.sleep(); serr != nil && err == nil {
		err = fmt.Errorf("atecc608: sleep: %w", serr)
	}
	return err
}

// Info is what the chip says about itself.
type Info struct {
	Revision     [4]byte // Info mode 0: 00 00 60 02 (608A), 00 00 60 03 (608B)
	ConfigLocked bool
	DataLocked   bool
	SlotLocked   bool // the Dev's slot
}

// Model names the revision.
func (i Info) Model() string {
	switch {
	case i.Revision[2] == 0x60 && i.Revision[3] == 0x02:
		return "ATECC608A"
	case i.Revision[2] == 0x60 && i.Revision[3] >= 0x03:
		return "ATECC608B"
	}
	return fmt.Sprintf("unknown revision %x", i.Revision)
}

// Info reads the revision and the lock bytes of the configuration zone
// (bytes 86 LockValue, 87 LockConfig: 0x00 locked, 0x55 unlocked; 88–89
// SlotLocked, bit n clear = slot n locked).
func (d *Dev) Info() (Info, error) {
	var in Info
	err := d.session(func() error { return d.info(&in) })
	return in, err
}

func (d *Dev) info(in *Info) error {
	rev, err := d.command(opInfo, 0x00, 0, nil, 4)
	if err != nil {
		return fmt.Errorf("atecc608: info: %w", err)
	}
	copy(in.Revision[:], rev)
	// Read 4 bytes of the config zone at word 21 (bytes 84..87) and 22
	// (88..91): block 2, offsets 5 and 6.
	w21, err := d.command(opRead, 0x00, 2<<3|5, nil, 4)
	if err != nil {
		return fmt.Errorf("atecc608: read lock bytes: %w", err)
	}
	w22, err := d.command(opRead, 0x00, 2<<3|6, nil, 4)
	if err != nil {
		return fmt.Errorf("atecc608: read slot locks: %w", err)
	}
	in.DataLocked = w21[2] == 0x00
	in.ConfigLocked = w21[3] == 0x00
	slotLocked := uint16(w22[0]) | uint16(w22[1])<<8
	in.SlotLocked = slotLocked&(1<<d.opts.Slot) == 0
	return nil
}

// PublicKey returns the public key of the slot's private key (GenKey mode
// 0x00: computed, nothing written), X||Y, 64 bytes.
func (d *Dev) PublicKey() ([]byte, error) {
	var pub []byte
	err := d.session(func() error {
		var err error
		pub, err = d.command(opGenKey, 0x00, uint16(d.opts.Slot), nil, 64)
		if err != nil {
			return fmt.Errorf("atecc608: public key of slot %d: %w", d.opts.Slot, err)
		}
		return nil
	})
	return pub, err
}

// GenKey makes a new private key in the slot (GenKey mode 0x04) and locks
// the slot so it can never be replaced (Lock mode 0x02 with the slot). It
// refuses when the configuration zone is unlocked (ErrConfigUnlocked: this
// driver never writes the configuration) or the slot is already locked
// (ErrSlotLocked). It returns the public key, X||Y.
func (d *Dev) GenKey() ([]byte, error) {
	var pub []byte
	err := d.session(func() error {
		var in Info
		if err := d.info(&in); err != nil {
			return err
		}
		if !in.ConfigLocked {
			return fmt.Errorf("%w: provision the chip (configure and lock it) with its maker's tool first; edge-agent never writes chip configuration", ErrConfigUnlocked)
		}
		if in.SlotLocked {
			return fmt.Errorf("%w: slot %d already holds a permanent key (\"edge-agent keys show\" prints it)", ErrSlotLocked, d.opts.Slot)
		}
		var err error
		if pub, err = d.command(opGenKey, 0x04, uint16(d.opts.Slot), nil, 64); err != nil {
			return fmt.Errorf("atecc608: genkey in slot %d: %w", d.opts.Slot, err)
		}
		if _, err := d.command(opLock, byte(0x02|d.opts.Slot<<2), 0, nil, 0); err != nil {
			return fmt.Errorf("atecc608: key made in slot %d but the slot could not be locked (is it lockable in the configuration?): %w", d.opts.Slot, err)
		}
		return nil
	})
	return pub, err
}

// Sign signs a 32-byte digest with the slot's key: Nonce in pass-through
// mode (0x03) loads the digest into TempKey, the chip idles (sleep would
// clear TempKey), then Sign mode 0x80 (external message in TempKey). It
// returns r||s.
func (d *Dev) Sign(digest []byte) ([]byte, error) {
	if len(digest) != 32 {
		return nil, fmt.Errorf("atecc608: sign: digest is %d bytes, want 32", len(digest))
	}
	var sig []byte
	err := d.session(func() error {
		if _, err := d.command(opNonce, 0x03, 0, digest, 0); err != nil {
			return fmt.Errorf("atecc608: nonce: %w", err)
		}
		if err := d.idle(); err != nil {
			return fmt.Errorf("atecc608: idle: %w", err)
		}
		if err := d.wake(); err != nil {
			return err
		}
		var err error
		if sig, err = d.command(opSign, 0x80, uint16(d.opts.Slot), nil, 64); err != nil {
			return fmt.Errorf("atecc608: sign with slot %d: %w", d.opts.Slot, err)
		}
		return nil
	})
	return sig, err
}

// Signer is the device key in the chip's slot, as an attest.Signer (ES256).
type Signer struct {
	dev *Dev
	kid []byte
	id  string
}

var (
	_ attest.Signer       = (*Signer)(nil)
	_ attest.DigestSigner = (*Signer)(nil)
)

// NewSigner reads the slot's public key and returns its signer.
func NewSigner(d *Dev) (*Signer, error) {
	pub, err := d.PublicKey()
	if err != nil {
		return nil, err
	}
	return signerFor(d, pub)
}

// CreateSigner makes the slot's key (GenKey, then locks the slot) and
// returns its signer.
func CreateSigner(d *Dev) (*Signer, error) {
	pub, err := d.GenKey()
	if err != nil {
		return nil, err
	}
	return signerFor(d, pub)
}

func signerFor(d *Dev, xy []byte) (*Signer, error) {
	pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, xy...))
	if err != nil {
		return nil, fmt.Errorf("atecc608: public key of slot %d: %w", d.opts.Slot, err)
	}
	kid, err := attest.P256KeyID(pk)
	if err != nil {
		return nil, err
	}
	id, err := attest.DeviceID(cose.AlgorithmES256, kid)
	if err != nil {
		return nil, err
	}
	return &Signer{dev: d, kid: kid, id: id}, nil
}

func (s *Signer) Algorithm() cose.Algorithm { return cose.AlgorithmES256 }
func (s *Signer) KeyID() []byte             { return append([]byte(nil), s.kid...) }
func (s *Signer) DeviceID() string          { return s.id }

// Dev is the chip.
func (s *Signer) Dev() *Dev { return s.dev }

// Sign hashes content with SHA-256 and has the chip sign the digest.
func (s *Signer) Sign(_ io.Reader, content []byte) ([]byte, error) {
	h := sha256.Sum256(content)
	return s.dev.Sign(h[:])
}

// SignDigest has the chip sign a SHA-256 digest; it returns r||s.
func (s *Signer) SignDigest(digest []byte) ([]byte, error) { return s.dev.Sign(digest) }
