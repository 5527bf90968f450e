package attest_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/attesttest"
	"github.com/edge-agent/edge-agent/drivers"
)

var updateES256 = flag.Bool("update-es256", false, "rewrite testdata/es256*.hex and session*.hex (ECDSA is randomised: only when the format changes)")

// rfc6979Key is the P-256 private key of RFC 6979 §A.2.5, a published value.
const rfc6979Key = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721"

// rfc6979Kid is its public key, compressed (Ux from §A.2.5; Uy is odd).
const rfc6979Kid = "0360fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"

func es256(tb testing.TB, n byte) *attesttest.ES256Signer {
	tb.Helper()
	d, _ := hex.DecodeString(rfc6979Key)
	d[31] ^= n
	s, err := attesttest.NewES256(d)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

var (
	testChain = [16]byte{0xc0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	testBoot  = bytes.Repeat([]byte{0xb0}, 16)
	t0        = time.Unix(1_750_000_000, 0)
)

func claims(seq uint64, at time.Time, prev [32]byte) *attest.Claims {
	return &attest.Claims{Chain: testChain, Seq: seq, Prev: prev, Time: at.UnixNano(), Kind: drivers.KindCounter,
		Source: "sim0", Obs: drivers.Counter{N: seq}, Boot: testBoot}
}

func sign(tb testing.TB, s attest.Signer, c *attest.Claims) []byte {
	tb.Helper()
	p, err := attest.EncodePayload(c)
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := attest.SignPayload(s, p)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func newSessionSigner(tb testing.TB, dev attest.Signer, now *time.Time, seed uint64) *attest.SessionSigner {
	tb.Helper()
	ss := attest.NewSessionSigner(dev, func() time.Time { return *now })
	_, err := ss.Rotate(rand.NewChaCha8([32]byte{byte(seed)}), attest.BindingClaims{
		Chain: testChain, Boot: testBoot, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(2 * time.Hour)})
	if err != nil {
		tb.Fatal(err)
	}
	return ss
}

func TestES256KeyID(t *testing.T) {
	s := es256(t, 0)
	if got := hex.EncodeToString(s.KeyID()); got != rfc6979Kid {
		t.Fatalf("kid %s, want %s", got, rfc6979Kid)
	}
	if !strings.HasPrefix(s.DeviceID(), "Qm") {
		t.Fatalf("ES256 device id %q is not a libp2p ECDSA peer id", s.DeviceID())
	}
}

func TestES256RoundTrip(t *testing.T) {
	s := es256(t, 0)
	raw := sign(t, s, claims(1, t0, [32]byte{}))
	rec, err := attest.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Alg != cose.AlgorithmES256 || rec.DeviceID != s.DeviceID() || rec.Binding != nil {
		t.Fatalf("decoded alg %v id %s binding %v", rec.Alg, rec.DeviceID, rec.Binding)
	}
	if err := rec.Verify(); err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1
	rec, err = attest.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Verify(); !errors.Is(err, attest.ErrBadSignature) {
		t.Fatalf("flipped signature: %v", err)
	}
}

func TestSessionRecord(t *testing.T) {
	dev := es256(t, 0)
	now := t0
	ss := newSessionSigner(t, dev, &now, 1)
	if dev.Count.Load() != 1 {
		t.Fatalf("binding took %d hardware signatures, want 1", dev.Count.Load())
	}
	var prev [32]byte
	for seq := uint64(1); seq <= 20; seq++ {
		c := claims(seq, now, prev)
		raw := sign(t, ss, c)
		p, _ := attest.EncodePayload(c)
		prev = attest.PayloadHash(p)
		rec, err := attest.Decode(raw)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		if rec.DeviceID != dev.DeviceID() || rec.Binding == nil || rec.Alg != cose.AlgorithmES256 {
			t.Fatalf("seq %d: device %s binding %v alg %v", seq, rec.DeviceID, rec.Binding != nil, rec.Alg)
		}
		if err := rec.Verify(); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
	}
	if dev.Count.Load() != 1 {
		t.Fatalf("20 session records took %d hardware signatures, want 1", dev.Count.Load())
	}
}

// forgeries returns records every verifier must reject, each with its name.
func forgeries(t *testing.T) map[string][]byte {
	dev, other := es256(t, 0), es256(t, 1)
	now := t0
	ss := newSessionSigner(t, dev, &now, 1)
	good := sign(t, ss, claims(1, now, [32]byte{}))
	out := map[string][]byte{}

	// A record signed by a session key that no binding covers: the binding
	// of session 1, the signature of session 2.
	ss2 := newSessionSigner(t, dev, &now, 2)
	r2 := sign(t, ss2, claims(1, now, [32]byte{}))
	forged := append([]byte(nil), good...)
	copy(forged[len(forged)-64:], r2[len(r2)-64:])
	out["session key not bound"] = forged

	// A binding signed by another device but naming dev's key.
	so := newSessionSigner(t, other, &now, 1) // same session seed: same session key
	ro := sign(t, so, claims(1, now, [32]byte{}))
	a, _ := attest.Decode(good)
	o, _ := attest.Decode(ro)
	fb := append([]byte(nil), good...)
	i := bytes.Index(fb, a.Binding.Signature)
	copy(fb[i:], o.Binding.Signature)
	out["binding signed by another device"] = fb

	// A record dated after its binding expired.
	later := now.Add(3 * time.Hour)
	exp := attest.NewSessionSigner(dev, func() time.Time { return now })
	exp.Rotate(rand.NewChaCha8([32]byte{3}), attest.BindingClaims{Chain: testChain, Boot: testBoot, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)})
	out["expired binding"] = sign(t, exp, claims(1, later, [32]byte{}))

	// A binding for another chain and for another boot.
	oc := attest.NewSessionSigner(dev, func() time.Time { return now })
	oc.Rotate(rand.NewChaCha8([32]byte{4}), attest.BindingClaims{Chain: [16]byte{9}, Boot: testBoot, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)})
	out["binding for another chain"] = sign(t, oc, claims(1, now, [32]byte{}))
	ob := attest.NewSessionSigner(dev, func() time.Time { return now })
	ob.Rotate(rand.NewChaCha8([32]byte{5}), attest.BindingClaims{Chain: testChain, Boot: bytes.Repeat([]byte{1}, 16), NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)})
	out["binding for another boot"] = sign(t, ob, claims(1, now, [32]byte{}))
	return out
}

func TestSessionForgeriesRejected(t *testing.T) {
	for name, raw := range forgeries(t) {
		t.Run(name, func(t *testing.T) {
			rec, err := attest.Decode(raw)
			if err != nil {
				t.Fatalf("forgery should decode (it is well-formed) and fail Verify: %v", err)
			}
			if err := rec.Verify(); !errors.Is(err, attest.ErrBadSignature) {
				t.Fatalf("Verify = %v, want ErrBadSignature", err)
			} else {
				t.Log(err)
			}
		})
	}
}

func TestSessionSignerExpires(t *testing.T) {
	now := t0
	ss := newSessionSigner(t, es256(t, 0), &now, 1)
	now = now.Add(2*time.Hour + time.Second)
	p, _ := attest.EncodePayload(claims(1, now, [32]byte{}))
	if _, err := attest.SignPayload(ss, p); !errors.Is(err, attest.ErrSessionExpired) {
		t.Fatalf("signing after expiry: %v, want ErrSessionExpired", err)
	}
}

// TestES256KnownAnswer pins records of the two new forms. ECDSA signatures
// are randomised, so the files are checked by decoding and verifying them
// and comparing their claims, not by re-signing.
func TestES256KnownAnswer(t *testing.T) {
	dev := es256(t, 0)
	now := t0
	forms := map[string]func() []byte{
		"es256.cose.hex":   func() []byte { return sign(t, dev, claims(1, now, [32]byte{})) },
		"session.cose.hex": func() []byte { return sign(t, newSessionSigner(t, dev, &now, 1), claims(1, now, [32]byte{})) },
	}
	for name, make := range forms {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name)
			if *updateES256 {
				os.WriteFile(path, []byte(hex.EncodeToString(make())+"\n"), 0o644)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (go test ./attest -run TestES256KnownAnswer -update-es256): %v", err)
			}
			raw, _ := hex.DecodeString(strings.TrimSpace(string(b)))
			rec, err := attest.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := rec.Verify(); err != nil {
				t.Fatal(err)
			}
			want, _ := attest.EncodePayload(claims(1, now, [32]byte{}))
			if !bytes.Equal(rec.Payload, want) || hex.EncodeToString(rec.KeyID) != rfc6979Kid {
				t.Fatalf("payload or key changed")
			}
			t.Logf("%s: %d bytes", name, len(raw))
		})
	}
}

// TestIndependentVerifier has Python's cryptography, through a verifier that
// shares no code with this package, check ES256 records, session records and
// the forgeries.
func TestIndependentVerifier(t *testing.T) {
	dev := es256(t, 0)
	now := t0
	ss := newSessionSigner(t, dev, &now, 1)
	var good [][]byte
	var prev [32]byte
	for seq := uint64(1); seq <= 5; seq++ {
		c := claims(seq, now, prev)
		good = append(good, sign(t, dev, c), sign(t, ss, c))
		p, _ := attest.EncodePayload(c)
		prev = attest.PayloadHash(p)
	}
	kats, _ := filepath.Glob(filepath.Join("testdata", "*.cose.hex"))
	if len(kats) < 9 {
		t.Fatalf("known-answer records: %v", kats)
	}
	for _, name := range kats { // every format, old and new
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := hex.DecodeString(strings.TrimSpace(string(b)))
		good = append(good, raw)
	}
	verdicts := RunIndependentVerifier(t, good)
	for i, v := range verdicts {
		if !strings.HasPrefix(v, "ok ") {
			t.Errorf("record %d: python says %q", i, v)
		}
	}
	bad := forgeries(t)
	var names []string
	var raws [][]byte
	for n, r := range bad {
		names = append(names, n)
		raws = append(raws, r)
	}
	for i, v := range RunIndependentVerifier(t, raws) {
		if !strings.HasPrefix(v, "bad ") {
			t.Errorf("forgery %q: python says %q", names[i], v)
		}
	}
}

// RunIndependentVerifier feeds records to testdata/coseverify.py and returns
// its verdict on each.
func RunIndependentVerifier(tb testing.TB, records [][]byte) []string {
	tb.Helper()
	var in bytes.Buffer
	for _, r := range records {
		in.WriteString(hex.EncodeToString(r) + "\n")
	}
	cmd := exec.Command("/usr/bin/python3", filepath.Join("testdata", "coseverify.py"))
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("python verifier (needs /usr/bin/python3 and python3-cryptography: make test-deps): %v\n%s", err, stderr.String())
	}
	var verdicts []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		verdicts = append(verdicts, sc.Text())
	}
	if len(verdicts) != len(records) {
		tb.Fatalf("python verifier gave %d verdicts for %d records:\n%s", len(verdicts), len(records), out)
	}
	return verdicts
}

// TestSignPayloadsIsSignPayload requires the batch path to make the records
// SignPayload makes, byte for byte, for a file key and a session key, and a
// signer it cannot batch (ES256 in a secure element) to sign one at a time.
func TestSignPayloadsIsSignPayload(t *testing.T) {
	file, err := attest.CreateKey("file:"+filepath.Join(t.TempDir(), "device.key"), rand.NewChaCha8([32]byte{7}))
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	session := newSessionSigner(t, es256(t, 0), &now, 3)
	for name, s := range map[string]attest.Signer{"file": file, "session": session, "es256": es256(t, 1)} {
		for _, n := range []int{1, 2, 16, 33} {
			payloads := make([][]byte, n)
			var prev [32]byte
			for i := range payloads {
				if payloads[i], err = attest.EncodePayload(claims(uint64(i+1), now, prev)); err != nil {
					t.Fatal(err)
				}
				prev = attest.PayloadHash(payloads[i])
			}
			got, err := attest.SignPayloads(s, payloads)
			if err != nil {
				t.Fatalf("%s, %d records: %v", name, n, err)
			}
			for i, p := range payloads {
				rec, err := attest.Decode(got[i])
				if err == nil {
					err = rec.Verify()
				}
				if err != nil {
					t.Fatalf("%s, %d records, #%d: %v", name, n, i, err)
				}
				if name == "es256" {
					continue // ECDSA is randomised: verifying is the check
				}
				if want, _ := attest.SignPayload(s, p); !bytes.Equal(got[i], want) {
					t.Fatalf("%s, %d records, #%d: SignPayloads\n %x\nSignPayload\n %x", name, n, i, got[i], want)
				}
			}
		}
	}
	if _, err := attest.SignPayloads(file, [][]byte{{0xa0}, nil}); err == nil {
		t.Error("a batch with an empty payload was signed")
	}
	now = now.Add(3 * time.Hour)
	if _, err := attest.SignPayloads(session, [][]byte{{0xa0}}); !errors.Is(err, attest.ErrSessionExpired) {
		t.Errorf("a batch after the session expired: %v, want ErrSessionExpired", err)
	}
}
