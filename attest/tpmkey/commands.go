package tpmkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/binary"
	"errors"
	"fmt"
)

// Constants from TPM 2.0 Library Part 2 (structures).
const (
	stNoSessions = 0x8001
	stSessions   = 0x8002
	stHashCheck  = 0x8024

	ccEvictControl  = 0x120
	ccCreatePrimary = 0x131
	ccSign          = 0x15D
	ccFlushContext  = 0x165
	ccReadPublic    = 0x173

	rhOwner = 0x40000001
	rhNull  = 0x40000007
	rsPW    = 0x40000009 // the password session

	algECC    = 0x0023
	algSHA256 = 0x000B
	algNull   = 0x0010
	algECDSA  = 0x0018
	curveP256 = 0x0003

	// TPMA_OBJECT: fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth, sign.
	attrFixedTPM    = 1 << 1
	attrFixedParent = 1 << 4
	attrSensOrigin  = 1 << 5
	attrUserAuth    = 1 << 6
	attrSign        = 1 << 18
	keyAttrs        = attrFixedTPM | attrFixedParent | attrSensOrigin | attrUserAuth | attrSign
)

// rcError is a TPM response code other than success.
type rcError uint32

func (e rcError) Error() string {
	if e&0x80 != 0 {
		return fmt.Sprintf("TPM response code %#x (format-1 error %#x)", uint32(e), uint32(e&0x3f))
	}
	return fmt.Sprintf("TPM response code %#x", uint32(e))
}

// isHandleError reports whether the TPM said the handle holds nothing
// (TPM_RC_HANDLE, a format-1 error naming a handle).
func isHandleError(err error) bool {
	var rc rcError
	return errors.As(err, &rc) && rc&0x80 != 0 && rc&0x3f == 0x0b
}

// isWarning reports TPM_RC_RETRY, YIELDED and TESTING.
func isWarning(err error) bool {
	var rc rcError
	return errors.As(err, &rc) && (rc == 0x922 || rc == 0x908 || rc == 0x90a)
}

type enc struct{ b []byte }

func (e *enc) u16(v uint16)   { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *enc) u32(v uint32)   { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *enc) tpm2b(b []byte) { e.u16(uint16(len(b))); e.b = append(e.b, b...) }

// command frames a command: header, handles, an optional password session
// for the first handle, parameters.
func command(cc uint32, handles []uint32, auth bool, params []byte) []byte {
	var e enc
	tag := uint16(stNoSessions)
	if auth {
		tag = stSessions
	}
	e.u16(tag)
	e.u32(0) // size, patched below
	e.u32(cc)
	for _, h := range handles {
		e.u32(h)
	}
	if auth {
		// One TPMS_AUTH_COMMAND: TPM_RS_PW, empty nonce, attributes 0,
		// empty password.
		e.u32(9)
		e.u32(rsPW)
		e.u16(0)
		e.b = append(e.b, 0)
		e.u16(0)
	}
	e.b = append(e.b, params...)
	binary.BigEndian.PutUint32(e.b[2:], uint32(len(e.b)))
	return e.b
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) take(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.err = errors.New("tpmkey: short TPM response")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
func (d *dec) u16() uint16 {
	if b := d.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}
func (d *dec) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}
func (d *dec) tpm2b() []byte { return d.take(int(d.u16())) }

// run sends a command and returns the response after its header, having
// checked the response code: handles (nHandles), then the parameter area
// (without its size when sessions were used).
func run(t transport, cmd []byte, nHandles int) (handles []uint32, params []byte, err error) {
	rsp, err := t.Send(cmd)
	if err != nil {
		return nil, nil, err
	}
	d := &dec{b: rsp}
	tag, size, rc := d.u16(), d.u32(), d.u32()
	if d.err != nil || int(size) != len(rsp) {
		return nil, nil, fmt.Errorf("tpmkey: malformed TPM response (%d bytes, header says %d)", len(rsp), size)
	}
	if rc != 0 {
		return nil, nil, rcError(rc)
	}
	for range nHandles {
		handles = append(handles, d.u32())
	}
	if tag == stSessions {
		params = d.take(int(d.u32()))
	} else {
		params = d.b
	}
	return handles, params, d.err
}

// publicTemplate is the key's TPMT_PUBLIC: ECC P-256, ECDSA with SHA-256,
// created in the TPM (sensitiveDataOrigin), never leaving it (fixedTPM,
// fixedParent), usable with an empty password. A primary key is derived
// from the owner seed and the template: random unique bytes make this key
// the device's own rather than one anyone with the same template could
// re-derive.
func publicTemplate(unique []byte) []byte {
	var e enc
	e.u16(algECC)
	e.u16(algSHA256)
	e.u32(keyAttrs)
	e.tpm2b(nil)     // authPolicy
	e.u16(algNull)   // symmetric: none (not a storage key)
	e.u16(algECDSA)  // scheme
	e.u16(algSHA256) // ... with SHA-256
	e.u16(curveP256)
	e.u16(algNull) // kdf
	e.tpm2b(unique)
	e.tpm2b(make([]byte, 32))
	return e.b
}

func readPublic(t transport, h uint32) ([]byte, error) {
	_, p, err := run(t, command(ccReadPublic, []uint32{h}, false, nil), 0)
	if err != nil {
		return nil, err
	}
	d := &dec{b: p}
	pub := d.tpm2b()
	return pub, d.err
}

// parsePublic checks a TPMT_PUBLIC is a non-exportable P-256 signing key
// and returns its point.
func parsePublic(p []byte) (*ecdsa.PublicKey, error) {
	d := &dec{b: p}
	typ, _, attrs := d.u16(), d.u16(), d.u32()
	d.tpm2b() // authPolicy
	sym := d.u16()
	if sym != algNull {
		d.take(4) // keyBits, mode
	}
	scheme := d.u16()
	if scheme != algNull {
		d.u16()
	}
	curve := d.u16()
	if kdf := d.u16(); kdf != algNull {
		d.u16()
	}
	x, y := d.tpm2b(), d.tpm2b()
	if d.err != nil {
		return nil, d.err
	}
	if typ != algECC || attrs&attrSign == 0 || attrs&attrFixedTPM == 0 || curve != curveP256 {
		return nil, fmt.Errorf("not a non-exportable P-256 signing key (type %#x, attributes %#x, curve %#x)", typ, attrs, curve)
	}
	if len(x) > 32 || len(y) > 32 {
		return nil, errors.New("oversized point")
	}
	raw := make([]byte, 65)
	raw[0] = 4
	copy(raw[33-len(x):33], x)
	copy(raw[65-len(y):], y)
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
}

func createPrimary(t transport, unique []byte) (uint32, error) {
	var e enc
	e.tpm2b([]byte{0, 0, 0, 0}) // inSensitive: empty userAuth and data
	e.tpm2b(publicTemplate(unique))
	e.tpm2b(nil) // outsideInfo
	e.u32(0)     // creationPCR: no selection
	h, _, err := run(t, command(ccCreatePrimary, []uint32{rhOwner}, true, e.b), 1)
	if err != nil {
		return 0, err
	}
	return h[0], nil
}

func evictControl(t transport, obj, persistent uint32) error {
	var e enc
	e.u32(persistent)
	_, _, err := run(t, command(ccEvictControl, []uint32{rhOwner, obj}, true, e.b), 0)
	return err
}

func flushContext(t transport, h uint32) error {
	var e enc
	e.u32(h)
	_, _, err := run(t, command(ccFlushContext, nil, false, e.b), 0)
	return err
}

// sign is TPM2_Sign of a digest with ECDSA-SHA256; the validation ticket is
// the NULL ticket (allowed for an unrestricted key).
func sign(t transport, h uint32, digest []byte) (r, s []byte, err error) {
	var e enc
	e.tpm2b(digest)
	e.u16(algECDSA)
	e.u16(algSHA256)
	e.u16(stHashCheck)
	e.u32(rhNull)
	e.tpm2b(nil)
	_, p, err := run(t, command(ccSign, []uint32{h}, true, e.b), 0)
	if err != nil {
		return nil, nil, err
	}
	d := &dec{b: p}
	if alg := d.u16(); alg != algECDSA {
		return nil, nil, fmt.Errorf("tpmkey: signature algorithm %#x, want ECDSA", alg)
	}
	d.u16() // hash
	r, s = d.tpm2b(), d.tpm2b()
	return r, s, d.err
}
