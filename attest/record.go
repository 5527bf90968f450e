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
//
// A *SessionSigner writes a session record instead: protected {1: -8},
// unprotected {13: binding}, signed by the current session key.
func SignPayload(s Signer, payload []byte) ([]byte, error) {
	if len(payload) == 0 {
		return nil, errors.New("attest: sign payload: empty payload")
	}
	if ss, ok := s.(*SessionSigner); ok {
		return signSession(ss, payload)
	}
	protected := appendProtected(nil, s.Algorithm(), s.KeyID())
	sig, err := s.Sign(rand.Reader, sigStructure(protected, payload))
	if err != nil {
		return nil, fmt.Errorf("attest: sign payload: %w", err)
	}
	if len(sig) == 0 {
		return nil, errors.New("attest: sign payload: signer returned an empty signature")
	}
	if err := checkKey(s.Algorithm(), s.KeyID(), sig); err != nil {
		// A record no verifier accepts is worse than no record.
		return nil, fmt.Errorf("attest: sign payload: %w", err)
	}
	return sign1(protected, payload, sig), nil
}

// SignPayloads is SignPayload for each payload, in order. A file key or a
// session key signs them all in one batch (attest/edbatch), which shares the
// costliest step of each signature between them; the records are byte for
// byte the ones SignPayload makes. Other signers, and every signer in a
// build without the batch signer (noedbatch), sign one at a time.
func SignPayloads(s Signer, payloads [][]byte) ([][]byte, error) {
	for _, p := range payloads {
		if len(p) == 0 {
			return nil, errors.New("attest: sign payload: empty payload")
		}
	}
	var (
		batch     signBatch
		protected []byte
		sess      *Session
	)
	switch s := s.(type) {
	case *fileSigner:
		batch, protected = s.batch, appendProtected(nil, s.Algorithm(), s.pub)
	case *SessionSigner:
		var err error
		if sess, err = s.session(); err != nil {
			return nil, fmt.Errorf("attest: sign payload: %w", err)
		}
		batch, protected = sess.batch, sessionProtected
	}
	out := make([][]byte, len(payloads))
	if batch == nil {
		for i, p := range payloads {
			var err error
			if out[i], err = SignPayload(s, p); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	tbs := make([][]byte, len(payloads))
	for i, p := range payloads {
		tbs[i] = sigStructure(protected, p)
	}
	// The keys are this package's own Ed25519 keys and edbatch makes
	// 64-byte signatures: SignPayload's checks of a foreign signer's output
	// have nothing to find here.
	sigs := batch(tbs)
	for i, p := range payloads {
		if sess != nil {
			out[i] = sessionRecord(sess, p, sigs[i])
		} else {
			out[i] = sign1(protected, p, sigs[i])
		}
	}
	return out, nil
}

// sign1 is the COSE_Sign1 envelope around payload and its signature.
func sign1(protected, payload, sig []byte) []byte {
	out := make([]byte, 0, 2+9+len(protected)+1+9+len(payload)+9+len(sig))
	out = append(out, tagSign1, array4)
	out = appendBstr(out, protected)
	out = append(out, emptyMap)
	out = appendBstr(out, payload)
	out = appendBstr(out, sig)
	return out
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
	// Binding is set on a session record: Signature is then the session
	// key's (EdDSA), and Alg and KeyID are the device key's, taken from the
	// binding, so the device id stays that of the long-term key.
	Binding *Binding
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
	if len(env.Payload) == 0 {
		return nil, errors.New("payload is empty or detached")
	}
	if len(env.Unprotected) > 0 && env.Unprotected[0] != emptyMap {
		return decodeSession(raw, &env)
	}
	var ph protectedWire
	if err := strictDec.Unmarshal(env.Protected, &ph); err != nil {
		return nil, fmt.Errorf("protected header: %w", err)
	}
	alg := cose.Algorithm(ph.Alg)
	if err := checkKey(alg, ph.Kid, env.Signature); err != nil {
		return nil, err
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

// decodeSession decodes a session record: protected {1: -8}, unprotected
// {13: binding}, an Ed25519 signature by the binding's session key.
func decodeSession(raw []byte, env *envelopeWire) (*Record, error) {
	var uh map[int64]cbor.RawMessage
	if err := strictDec.Unmarshal(env.Unprotected, &uh); err != nil {
		return nil, fmt.Errorf("unprotected header: %w", err)
	}
	kcwt, ok := uh[HeaderKCWT]
	if !ok || len(uh) != 1 {
		return nil, fmt.Errorf("unprotected header: want only the session binding (label %d), got %d parameters", HeaderKCWT, len(uh))
	}
	if !bytes.Equal(env.Protected, sessionProtected) {
		return nil, errors.New("protected header of a session record must be {1: -8}")
	}
	if len(env.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("session signature is %d bytes, want %d", len(env.Signature), ed25519.SignatureSize)
	}
	b, err := decodeBinding(kcwt)
	if err != nil {
		return nil, err
	}
	rebuilt := appendSessionEnvelope(nil, b.Raw, env.Payload, env.Signature)
	if !bytes.Equal(rebuilt, raw) {
		return nil, errors.New("session envelope is not in the canonical form (protected {1: -8}, unprotected {13: binding}, shortest lengths)")
	}
	claims, err := decodePayload(env.Payload)
	if err != nil {
		return nil, err
	}
	id, err := DeviceID(b.Alg, b.KeyID)
	if err != nil {
		return nil, err
	}
	return &Record{
		Raw:       raw,
		Alg:       b.Alg,
		KeyID:     b.KeyID,
		DeviceID:  id,
		Payload:   env.Payload,
		Claims:    claims,
		Signature: env.Signature,
		Binding:   b,
	}, nil
}

// checkKey checks the kid and signature sizes for alg.
func checkKey(alg cose.Algorithm, kid, sig []byte) error {
	switch alg {
	case cose.AlgorithmEdDSA:
		if len(kid) != ed25519.PublicKeySize {
			return fmt.Errorf("protected header: Ed25519 kid is %d bytes, want %d", len(kid), ed25519.PublicKeySize)
		}
		if len(sig) != ed25519.SignatureSize {
			return fmt.Errorf("Ed25519 signature is %d bytes, want %d", len(sig), ed25519.SignatureSize)
		}
	case cose.AlgorithmES256:
		if _, err := ParseP256Key(kid); err != nil {
			return fmt.Errorf("protected header: %w", err)
		}
		if len(sig) != ES256SignatureSize {
			return fmt.Errorf("ES256 signature is %d bytes, want %d (r||s, not DER)", len(sig), ES256SignatureSize)
		}
	default:
		return fmt.Errorf("protected header: algorithm %d is not supported by this build (EdDSA -8, ES256 -7)", alg)
	}
	return nil
}

// verifySign1 checks a COSE_Sign1 signature by the key (alg, key) through
// go-cose, which encodes the protected header {1: alg, 4: kid} itself (kid
// omitted when nil), independently of this package's encoder.
func verifySign1(alg cose.Algorithm, key, kid, payload, sig []byte) error {
	pub, err := PublicKey(alg, key)
	if err != nil {
		return err
	}
	v, err := cose.NewVerifier(alg, pub)
	if err != nil {
		return err
	}
	ph := cose.ProtectedHeader{cose.HeaderLabelAlgorithm: alg}
	if kid != nil {
		ph[cose.HeaderLabelKeyID] = kid
	}
	msg := cose.Sign1Message{Headers: cose.Headers{Protected: ph}, Payload: payload, Signature: sig}
	return msg.Verify(nil, v)
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
// (through go-cose, independently of SignPayload's encoder). A session record
// is checked twice: the binding against the device key and its cover of the
// record's chain, boot and time, then the record against the session key.
// It returns an error wrapping ErrBadSignature when either does not verify
// (and ErrBadBinding too when the binding is at fault).
func (r *Record) Verify() error {
	if r.Binding != nil {
		if err := verifyBinding(r.Binding, &r.Claims); err != nil {
			return fmt.Errorf("%w: seq %d of device %s: %w", ErrBadSignature, r.Claims.Seq, r.DeviceID, err)
		}
		if err := verifySign1(cose.AlgorithmEdDSA, r.Binding.SessionKey, nil, r.Payload, r.Signature); err != nil {
			return fmt.Errorf("%w: seq %d of device %s: session key: %w", ErrBadSignature, r.Claims.Seq, r.DeviceID, err)
		}
		return nil
	}
	if err := checkKey(r.Alg, r.KeyID, r.Signature); err != nil {
		// ed25519.Verify panics on a wrong-sized key; Decode never yields
		// one, but a Record is a plain struct anyone can fill.
		return fmt.Errorf("%w: seq %d: %w", ErrBadSignature, r.Claims.Seq, err)
	}
	if err := verifySign1(r.Alg, r.KeyID, r.KeyID, r.Payload, r.Signature); err != nil {
		return fmt.Errorf("%w: seq %d of device %s: %w", ErrBadSignature, r.Claims.Seq, r.DeviceID, err)
	}
	return nil
}
