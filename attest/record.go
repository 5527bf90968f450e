package attest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// CBOR heads that the envelope is made of (RFC 9052 §4.2, §4.4).
const (
	tagSign1      = 0xd2 // tag 18, COSE_Sign1
	array4        = 0x84
	emptyMap      = 0xa0 // the unprotected header: always empty
	emptyBstr     = 0x40 // external_aad: always empty
	sigContextLen = 0x6a // text string of length 10: "Signature1"
	sigContext    = "Signature1"
)

// SignPayload wraps payload in a COSE_Sign1 (tag 18) signed by s: protected
// header {1: alg, 4: kid}, empty unprotected header, no external AAD.
//
// It writes the CBOR itself rather than through go-cose, which builds the
// same bytes with several reflective encodes; the tests check the two agree
// byte for byte, and Verify goes through go-cose.
func SignPayload(s Signer, payload []byte) ([]byte, error) {
	if len(payload) == 0 {
		return nil, errors.New("attest: sign payload: empty payload")
	}
	protected := appendProtected(nil, s.Algorithm(), s.KeyID())

	tbs := make([]byte, 0, 2+len(sigContext)+9+len(protected)+1+9+len(payload))
	tbs = append(tbs, array4, sigContextLen)
	tbs = append(tbs, sigContext...)
	tbs = appendBstr(tbs, protected)
	tbs = append(tbs, emptyBstr)
	tbs = appendBstr(tbs, payload)
	sig, err := s.Sign(rand.Reader, tbs)
	if err != nil {
		return nil, fmt.Errorf("attest: sign payload: %w", err)
	}
	if len(sig) == 0 {
		return nil, errors.New("attest: sign payload: signer returned an empty signature")
	}

	out := make([]byte, 0, 2+9+len(protected)+1+9+len(payload)+9+len(sig))
	out = append(out, tagSign1, array4)
	out = appendBstr(out, protected)
	out = append(out, emptyMap)
	out = appendBstr(out, payload)
	out = appendBstr(out, sig)
	return out, nil
}

// appendProtected appends the protected header map {1: alg, 4: kid} in core
// deterministic form (keys 1 < 4).
func appendProtected(b []byte, alg cose.Algorithm, kid []byte) []byte {
	b = append(b, 0xa2, 0x01)
	b = appendInt(b, int64(alg))
	b = append(b, 0x04)
	return appendBstr(b, kid)
}

// appendHead appends a CBOR head with the shortest argument (RFC 8949 §4.2.1).
func appendHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= math.MaxUint8:
		return append(b, m|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), n)
}

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		return appendHead(b, 1, uint64(-(v + 1)))
	}
	return appendHead(b, 0, uint64(v))
}

func appendBstr(b, s []byte) []byte {
	return append(appendHead(b, 2, uint64(len(s))), s...)
}

// Record is one decoded COSE_Sign1 attestation.
type Record struct {
	Raw       []byte // the COSE_Sign1 bytes as given to Decode (not copied)
	Alg       cose.Algorithm
	KeyID     []byte // raw public key from the protected header
	DeviceID  string // libp2p peer ID of KeyID
	Payload   []byte
	Claims    Claims // Obs is a cbor.RawMessage
	Signature []byte
}

// envelopeWire is COSE_Sign1 without its tag.
type envelopeWire struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected cbor.RawMessage
	Payload     []byte
	Signature   []byte
}

type protectedWire struct {
	Alg int64  `cbor:"1,keyasint"`
	Kid []byte `cbor:"4,keyasint"`
}

// Decode parses a record and checks its structure and claims: the envelope,
// protected header and payload must be exactly the bytes SignPayload and
// EncodePayload would write for the decoded values (so one set of claims has
// one encoding, and Raw re-encodes from its parts), chain 16 bytes, prev 32,
// seq >= 1, kind non-empty, sizes bounded. It does not check the signature:
// call Verify. It never panics; errors wrap ErrMalformed.
//
// The record keeps raw as Raw; the caller must not change it afterwards.
func Decode(raw []byte) (*Record, error) {
	r, err := decode(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return r, nil
}

func decode(raw []byte) (*Record, error) {
	if len(raw) > MaxRecordSize {
		return nil, fmt.Errorf("%d bytes exceeds the %d-byte limit", len(raw), MaxRecordSize)
	}
	if len(raw) < 2 || raw[0] != tagSign1 || raw[1] != array4 {
		return nil, errors.New("not a tagged COSE_Sign1 (want tag 18 and an array of 4)")
	}
	var env envelopeWire
	if err := strictDec.Unmarshal(raw[1:], &env); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	var ph protectedWire
	if err := strictDec.Unmarshal(env.Protected, &ph); err != nil {
		return nil, fmt.Errorf("protected header: %w", err)
	}
	alg := cose.Algorithm(ph.Alg)
	if alg != cose.AlgorithmEdDSA {
		return nil, fmt.Errorf("protected header: algorithm %d is not supported by this build (only EdDSA, -8)", ph.Alg)
	}
	if len(ph.Kid) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("protected header: Ed25519 kid is %d bytes, want %d", len(ph.Kid), ed25519.PublicKeySize)
	}
	if len(env.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("Ed25519 signature is %d bytes, want %d", len(env.Signature), ed25519.SignatureSize)
	}
	if len(env.Payload) == 0 {
		return nil, errors.New("payload is empty or detached")
	}
	// One record, one encoding: rebuild the envelope from its parts. This
	// rejects a non-empty unprotected header, extra header parameters,
	// non-shortest lengths and a null payload in one comparison.
	var rebuilt []byte
	rebuilt = append(rebuilt, tagSign1, array4)
	rebuilt = appendBstr(rebuilt, appendProtected(nil, alg, ph.Kid))
	rebuilt = append(rebuilt, emptyMap)
	rebuilt = appendBstr(rebuilt, env.Payload)
	rebuilt = appendBstr(rebuilt, env.Signature)
	if !bytes.Equal(rebuilt, raw) {
		return nil, errors.New("envelope is not in the canonical form (protected {1: alg, 4: kid}, empty unprotected header, shortest lengths)")
	}
	claims, err := decodePayload(env.Payload)
	if err != nil {
		return nil, err
	}
	id, err := DeviceID(alg, ph.Kid)
	if err != nil {
		return nil, err
	}
	return &Record{
		Raw:       raw,
		Alg:       alg,
		KeyID:     ph.Kid,
		DeviceID:  id,
		Payload:   env.Payload,
		Claims:    claims,
		Signature: env.Signature,
	}, nil
}

func decodePayload(p []byte) (Claims, error) {
	if len(p) > MaxPayloadSize {
		return Claims{}, fmt.Errorf("payload is %d bytes, limit %d", len(p), MaxPayloadSize)
	}
	var w payloadWire
	if err := strictDec.Unmarshal(p, &w); err != nil {
		return Claims{}, fmt.Errorf("payload: %w", err)
	}
	if len(w.Chain) != 16 {
		return Claims{}, fmt.Errorf("payload: chain is %d bytes, want 16", len(w.Chain))
	}
	if len(w.Prev) != 32 {
		return Claims{}, fmt.Errorf("payload: prev is %d bytes, want 32", len(w.Prev))
	}
	if w.Time > math.MaxInt64 {
		return Claims{}, fmt.Errorf("payload: time %d overflows int64 nanoseconds", w.Time)
	}
	c := Claims{
		Seq:    w.Seq,
		Time:   int64(w.Time),
		Kind:   w.Kind,
		Source: w.Source,
		Loc:    w.Loc,
		Boot:   w.Boot,
		TQ:     w.TQ,
	}
	copy(c.Chain[:], w.Chain)
	copy(c.Prev[:], w.Prev)
	if err := checkClaims(&c); err != nil {
		return Claims{}, fmt.Errorf("payload: %w", err)
	}
	if len(w.Obs) == 0 || w.Obs[0]>>5 != 5 {
		return Claims{}, errors.New("payload: obs is missing or not a map")
	}
	if err := checkCanonicalObs(w.Obs); err != nil {
		return Claims{}, fmt.Errorf("payload: obs: %w", err)
	}
	if err := checkAgentObs(c.Kind, c.Seq, w.Obs); err != nil {
		return Claims{}, fmt.Errorf("payload: %w", err)
	}
	c.Obs = w.Obs
	again, err := marshalPayload(&c, w.Obs)
	if err != nil {
		return Claims{}, fmt.Errorf("payload: re-encode: %w", err)
	}
	if !bytes.Equal(again, p) {
		return Claims{}, errors.New("payload is not in core deterministic CBOR, or has missing or extra fields")
	}
	return c, nil
}

// checkCanonicalObs checks the obs bytes are core deterministic: decoded
// generically and encoded again they must not change. The payload hash
// covers these bytes, so two encodings of one observation would be two
// different records.
func checkCanonicalObs(obs cbor.RawMessage) error {
	var v any
	if err := strictDec.Unmarshal(obs, &v); err != nil {
		return err
	}
	again, err := detEnc.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, obs) {
		return errors.New("not in core deterministic CBOR")
	}
	return nil
}

// Verify checks the signature over the record's Alg, KeyID and Payload
// (through go-cose, independently of SignPayload's encoder). It returns an
// error wrapping ErrBadSignature when the signature does not verify.
func (r *Record) Verify() error {
	if r.Alg != cose.AlgorithmEdDSA || len(r.KeyID) != ed25519.PublicKeySize {
		// ed25519.Verify panics on a wrong-sized key; Decode never yields
		// one, but a Record is a plain struct anyone can fill.
		return fmt.Errorf("%w: seq %d: unsupported algorithm %v or %d-byte key", ErrBadSignature, r.Claims.Seq, r.Alg, len(r.KeyID))
	}
	v, err := cose.NewVerifier(r.Alg, ed25519.PublicKey(r.KeyID))
	if err != nil {
		return fmt.Errorf("%w: seq %d: %w", ErrBadSignature, r.Claims.Seq, err)
	}
	msg := cose.Sign1Message{
		Headers: cose.Headers{
			Protected: cose.ProtectedHeader{
				cose.HeaderLabelAlgorithm: r.Alg,
				cose.HeaderLabelKeyID:     r.KeyID,
			},
		},
		Payload:   r.Payload,
		Signature: r.Signature,
	}
	if err := msg.Verify(nil, v); err != nil {
		return fmt.Errorf("%w: seq %d of device %s: %w", ErrBadSignature, r.Claims.Seq, r.DeviceID, err)
	}
	return nil
}
