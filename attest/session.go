package attest

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/veraison/go-cose"
)

// HeaderKCWT is the COSE header parameter that carries a CWT naming the key
// that signed the message in its cnf claim (RFC 9528 §10.6, "kcwt").
const HeaderKCWT = 13

// A session record is signed by an ephemeral Ed25519 key held only in
// memory, so a slow hardware key (a TPM ~200 ms per signature, an ATECC608 a
// few per second) signs once per session rather than once per record. The
// record carries, in its unprotected header, the binding: a CWT (RFC 8392)
// signed by the device key whose cnf claim (RFC 8747) is the session key,
// restricted to one chain, one boot and a validity window. Each record stays
// verifiable on its own. docs/attestation.md gives the bytes.

// BindingClaims is what a binding restricts its session key to.
type BindingClaims struct {
	Chain     [16]byte
	Boot      []byte // the records' boot id, 16 bytes
	NotBefore time.Time
	NotAfter  time.Time
}

// Binding is a decoded session binding.
type Binding struct {
	Alg        cose.Algorithm // of the device key that signed it
	KeyID      []byte         // the device key
	SessionKey ed25519.PublicKey
	Chain      [16]byte
	Boot       []byte
	NotBefore  time.Time // whole seconds, as on the wire
	NotAfter   time.Time
	Protected  []byte // the binding's protected header bytes
	Payload    []byte // its claims bytes
	Signature  []byte
	Raw        []byte // the whole CWT as carried in the record
}

// bindingWire is the CWT claims set. exp (4) and nbf (5) are NumericDate
// seconds, cnf (8) holds a COSE_Key; "boot" and "chain" are this format's
// own claims (text keys, as RFC 8392 §4 allows for unregistered ones).
type bindingWire struct {
	Exp   uint64  `cbor:"4,keyasint"`
	Nbf   uint64  `cbor:"5,keyasint"`
	Cnf   cnfWire `cbor:"8,keyasint"`
	Boot  []byte  `cbor:"boot"`
	Chain []byte  `cbor:"chain"`
}

type cnfWire struct {
	Key coseKeyWire `cbor:"1,keyasint"` // COSE_Key (RFC 8747 §3.2)
}

// coseKeyWire is an OKP Ed25519 COSE_Key (RFC 9053 §7.2).
type coseKeyWire struct {
	Kty int64  `cbor:"1,keyasint"`  // 1: OKP
	Crv int64  `cbor:"-1,keyasint"` // 6: Ed25519
	X   []byte `cbor:"-2,keyasint"`
}

const (
	ktyOKP     = 1
	crvEd25519 = 6
)

// Session is one ephemeral Ed25519 key and the binding the device key signed
// for it. It is immutable and safe for concurrent use.
type Session struct {
	priv    ed25519.PrivateKey
	batch   signBatch // priv, for SignPayloads; nil in builds without the batch signer
	binding []byte
	claims  BindingClaims
	alg     cose.Algorithm
	kid     []byte
	id      string
}

// NewSession draws an Ed25519 key from rand and has device sign its binding:
// this is the one hardware signature of the session.
func NewSession(device Signer, rand io.Reader, c BindingClaims) (*Session, error) {
	if len(c.Boot) != 16 {
		return nil, fmt.Errorf("attest: new session: boot id is %d bytes, want 16", len(c.Boot))
	}
	if !c.NotAfter.After(c.NotBefore) || c.NotBefore.Unix() < 0 {
		return nil, fmt.Errorf("attest: new session: validity %v..%v is empty", c.NotBefore, c.NotAfter)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("attest: new session: read randomness: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	batch, err := newBatchSigner(priv)
	if err != nil {
		return nil, fmt.Errorf("attest: new session: %w", err)
	}
	w := bindingWire{
		Exp:   uint64(c.NotAfter.Unix()),
		Nbf:   uint64(c.NotBefore.Unix()),
		Cnf:   cnfWire{Key: coseKeyWire{Kty: ktyOKP, Crv: crvEd25519, X: priv.Public().(ed25519.PublicKey)}},
		Boot:  c.Boot,
		Chain: c.Chain[:],
	}
	claims, err := detEnc.Marshal(&w)
	if err != nil {
		return nil, fmt.Errorf("attest: new session: %w", err)
	}
	sign1, err := SignPayload(device, claims)
	if err != nil {
		return nil, fmt.Errorf("attest: new session: the device key did not sign the binding: %w", err)
	}
	// The CWT goes in the header untagged: kcwt's value is the COSE_Sign1
	// array itself.
	c.NotBefore, c.NotAfter = time.Unix(int64(w.Nbf), 0), time.Unix(int64(w.Exp), 0)
	return &Session{priv: priv, batch: batch, binding: sign1[1:], claims: c, alg: device.Algorithm(), kid: device.KeyID(), id: device.DeviceID()}, nil
}

// Claims returns what the session is restricted to (validity in whole
// seconds, as signed).
func (s *Session) Claims() BindingClaims { return s.claims }

// Public is the session key.
func (s *Session) Public() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

// Binding returns the CWT bytes as records carry them.
func (s *Session) Binding() []byte { return append([]byte(nil), s.binding...) }

// ErrSessionExpired is returned when a record would be signed after its
// session's binding expired and no new session replaced it.
var ErrSessionExpired = errors.New("attest: session key expired")

// SessionSigner signs records with the current session key; Rotate replaces
// it. Its identity (Algorithm, KeyID, DeviceID) is the device key's, so
// nothing downstream sees the session key as a device. Safe for concurrent
// use.
type SessionSigner struct {
	device Signer
	now    func() time.Time
	mu     sync.RWMutex
	cur    *Session
}

// NewSessionSigner returns a signer with no session yet; call Rotate before
// signing. now is the clock expiry is checked against (nil: time.Now).
func NewSessionSigner(device Signer, now func() time.Time) *SessionSigner {
	if now == nil {
		now = time.Now
	}
	return &SessionSigner{device: device, now: now}
}

// Device is the long-term key.
func (s *SessionSigner) Device() Signer { return s.device }

// Rotate makes a new session and switches to it. On error the current
// session, if any, stays in use until it expires.
func (s *SessionSigner) Rotate(rand io.Reader, c BindingClaims) (*Session, error) {
	n, err := NewSession(s.device, rand, c)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.cur = n
	s.mu.Unlock()
	return n, nil
}

// Current is the session in use (nil before the first Rotate).
func (s *SessionSigner) Current() *Session {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cur
}

func (s *SessionSigner) Algorithm() cose.Algorithm { return s.device.Algorithm() }
func (s *SessionSigner) KeyID() []byte             { return s.device.KeyID() }
func (s *SessionSigner) DeviceID() string          { return s.device.DeviceID() }

// Sign signs with the current session key. SignPayload calls session()
// instead, so that key, header and signature come from one session; Sign is
// here so SessionSigner is a Signer.
func (s *SessionSigner) Sign(_ io.Reader, content []byte) ([]byte, error) {
	sess, err := s.session()
	if err != nil {
		return nil, err
	}
	return ed25519.Sign(sess.priv, content), nil
}

func (s *SessionSigner) session() (*Session, error) {
	sess := s.Current()
	if sess == nil {
		return nil, errors.New("attest: session signer has no session yet")
	}
	if now := s.now(); !now.Before(sess.claims.NotAfter) {
		return nil, fmt.Errorf("%w at %s and the device key made no new one (check the key backend: \"edge-agent doctor\")",
			ErrSessionExpired, sess.claims.NotAfter.UTC().Format(time.RFC3339))
	}
	return sess, nil
}

// signSession writes a session record: protected {1: -8}, unprotected
// {13: binding}.
func signSession(s *SessionSigner, payload []byte) ([]byte, error) {
	sess, err := s.session()
	if err != nil {
		return nil, fmt.Errorf("attest: sign payload: %w", err)
	}
	protected := sessionProtected
	sig := ed25519.Sign(sess.priv, sigStructure(protected, payload))
	return sessionRecord(sess, payload, sig), nil
}

// sessionRecord is the session record of payload and its signature.
func sessionRecord(sess *Session, payload, sig []byte) []byte {
	return appendSessionEnvelope(make([]byte, 0, 16+len(sess.binding)+len(payload)+len(sig)), sess.binding, payload, sig)
}

// sessionProtected is {1: -8}.
var sessionProtected = []byte{0xa1, 0x01, 0x27}

func sigStructure(protected, payload []byte) []byte {
	tbs := make([]byte, 0, 2+len(sigContext)+9+len(protected)+1+9+len(payload))
	tbs = append(tbs, array4, sigContextLen)
	tbs = append(tbs, sigContext...)
	tbs = appendBstr(tbs, protected)
	tbs = append(tbs, emptyBstr)
	return appendBstr(tbs, payload)
}

func appendSessionEnvelope(out, binding, payload, sig []byte) []byte {
	out = append(out, tagSign1, array4)
	out = appendBstr(out, sessionProtected)
	out = append(out, 0xa1, HeaderKCWT)
	out = append(out, binding...)
	out = appendBstr(out, payload)
	return appendBstr(out, sig)
}

// decodeBinding parses and checks the structure of a kcwt value. It does not
// check the signature (verifyBinding does).
func decodeBinding(raw []byte) (*Binding, error) {
	var env envelopeWire
	if err := strictDec.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("binding: %w", err)
	}
	var ph protectedWire
	if err := strictDec.Unmarshal(env.Protected, &ph); err != nil {
		return nil, fmt.Errorf("binding: protected header: %w", err)
	}
	alg := cose.Algorithm(ph.Alg)
	if err := checkKey(alg, ph.Kid, env.Signature); err != nil {
		return nil, fmt.Errorf("binding: %w", err)
	}
	var w bindingWire
	if err := strictDec.Unmarshal(env.Payload, &w); err != nil {
		return nil, fmt.Errorf("binding: claims: %w", err)
	}
	if w.Cnf.Key.Kty != ktyOKP || w.Cnf.Key.Crv != crvEd25519 || len(w.Cnf.Key.X) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("binding: cnf is not an Ed25519 COSE_Key (kty %d, crv %d, %d-byte x)", w.Cnf.Key.Kty, w.Cnf.Key.Crv, len(w.Cnf.Key.X))
	}
	if len(w.Chain) != 16 || len(w.Boot) != 16 {
		return nil, fmt.Errorf("binding: chain is %d bytes and boot %d, want 16 each", len(w.Chain), len(w.Boot))
	}
	if w.Exp <= w.Nbf || w.Exp > 1<<40 {
		return nil, fmt.Errorf("binding: validity %d..%d is empty or out of range", w.Nbf, w.Exp)
	}
	again, err := detEnc.Marshal(&w)
	if err != nil || !bytes.Equal(again, env.Payload) {
		return nil, errors.New("binding: claims are not in core deterministic CBOR")
	}
	var rebuilt []byte
	rebuilt = append(rebuilt, array4)
	rebuilt = appendBstr(rebuilt, appendProtected(nil, alg, ph.Kid))
	rebuilt = append(rebuilt, emptyMap)
	rebuilt = appendBstr(rebuilt, env.Payload)
	rebuilt = appendBstr(rebuilt, env.Signature)
	if !bytes.Equal(rebuilt, raw) {
		return nil, errors.New("binding: not in the canonical form (protected {1: alg, 4: kid}, empty unprotected header)")
	}
	b := &Binding{
		Alg: alg, KeyID: ph.Kid, SessionKey: ed25519.PublicKey(w.Cnf.Key.X), Boot: w.Boot,
		NotBefore: time.Unix(int64(w.Nbf), 0), NotAfter: time.Unix(int64(w.Exp), 0),
		Protected: env.Protected, Payload: env.Payload, Signature: env.Signature, Raw: raw,
	}
	copy(b.Chain[:], w.Chain)
	return b, nil
}

// ErrBadBinding is returned (wrapped with ErrBadSignature) when a session
// record's binding does not cover it: the device key did not sign the
// binding, or the record's chain, boot or time lies outside it.
var ErrBadBinding = errors.New("attest: session binding does not cover the record")

// verifyBinding checks the binding's signature and that it covers c.
func verifyBinding(b *Binding, c *Claims) error {
	if err := verifySign1(b.Alg, b.KeyID, b.KeyID, b.Payload, b.Signature); err != nil {
		return fmt.Errorf("%w: not signed by device key: %w", ErrBadBinding, err)
	}
	if c.Chain != b.Chain {
		return fmt.Errorf("%w: record chain %x, binding chain %x", ErrBadBinding, c.Chain, b.Chain)
	}
	if !bytes.Equal(c.Boot, b.Boot) {
		return fmt.Errorf("%w: record boot %x, binding boot %x", ErrBadBinding, c.Boot, b.Boot)
	}
	t := time.Unix(0, c.Time)
	if t.Before(b.NotBefore) || !t.Before(b.NotAfter) {
		return fmt.Errorf("%w: record time %s is outside the binding's validity %s..%s", ErrBadBinding,
			t.UTC().Format(time.RFC3339), b.NotBefore.UTC().Format(time.RFC3339), b.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}
