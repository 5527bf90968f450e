// Package keys opens the device key named by a key URI, whichever backend
// holds it: file: (an Ed25519 PEM file, the default), tpm: (a TPM 2.0) or
// ecc608: (an ATECC608 on I²C). It also keeps the manufacturer certificate
// that goes with the key.
package keys

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"periph.io/x/host/v3/sysfs"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/atecc608"
)

// Backend names the scheme of a key URI: "file", "tpm" or "ecc608".
func Backend(uri string) string {
	switch {
	case strings.HasPrefix(uri, "tpm:"):
		return "tpm"
	case strings.HasPrefix(uri, "ecc608:"):
		return "ecc608"
	}
	return "file"
}

// Hardware reports whether the key of uri is held by hardware that will not
// export it.
func Hardware(uri string) bool { return Backend(uri) != "file" }

// Open opens the device key.
func Open(uri string) (attest.Signer, error) {
	switch Backend(uri) {
	case "tpm":
		return openTPM(uri)
	case "ecc608":
		d, err := openECC608(uri)
		if err != nil {
			return nil, err
		}
		return atecc608.NewSigner(d)
	}
	return attest.OpenSigner(uri)
}

// Create makes a new device key; it never replaces one.
func Create(uri string, rand io.Reader) (attest.Signer, error) {
	switch Backend(uri) {
	case "tpm":
		return createTPM(uri, rand)
	case "ecc608":
		d, err := openECC608(uri)
		if err != nil {
			return nil, err
		}
		return atecc608.CreateSigner(d)
	}
	return attest.CreateKey(uri, rand)
}

// IsExists reports whether err says a key already exists.
func IsExists(err error) bool {
	return errors.Is(err, attest.ErrKeyExists) || tpmExists(err) || errors.Is(err, atecc608.ErrSlotLocked)
}

// IsNotFound reports whether err says there is no key yet.
func IsNotFound(err error) bool {
	return errors.Is(err, attest.ErrKeyNotFound) || tpmNotFound(err)
}

// ECC608Location is where an ecc608: URI points.
type ECC608Location struct {
	Bus  int // /dev/i2c-N
	Addr uint16
	Slot int
}

// ParseECC608 reads "ecc608:/dev/i2c-1?addr=0x60&slot=0" (address and slot
// optional: 0x60 and 0).
func ParseECC608(uri string) (ECC608Location, error) {
	rest, ok := strings.CutPrefix(uri, "ecc608:")
	if !ok {
		return ECC608Location{}, fmt.Errorf("keys: %q is not an ecc608: key uri", uri)
	}
	l := ECC608Location{Bus: 1, Addr: atecc608.DefaultOpts.Addr, Slot: 0}
	path, query, _ := strings.Cut(rest, "?")
	if path != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(path, "/dev/i2c-"))
		if err != nil || !strings.HasPrefix(path, "/dev/i2c-") {
			return ECC608Location{}, fmt.Errorf("keys: key uri %q: want ecc608:/dev/i2c-N", uri)
		}
		l.Bus = n
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return ECC608Location{}, fmt.Errorf("keys: key uri %q: %w", uri, err)
	}
	for k := range q {
		switch k {
		case "addr":
			a, err := strconv.ParseUint(q.Get(k), 0, 7)
			if err != nil {
				return ECC608Location{}, fmt.Errorf("keys: key uri %q: addr %q is not a 7-bit address (0x60 as shipped)", uri, q.Get(k))
			}
			l.Addr = uint16(a)
		case "slot":
			s, err := strconv.Atoi(q.Get(k))
			if err != nil || s < 0 || s > 15 {
				return ECC608Location{}, fmt.Errorf("keys: key uri %q: slot %q is not 0..15", uri, q.Get(k))
			}
			l.Slot = s
		default:
			return ECC608Location{}, fmt.Errorf("keys: key uri %q: unknown parameter %q (addr, slot)", uri, k)
		}
	}
	return l, nil
}

func openECC608(uri string) (*atecc608.Dev, error) {
	l, err := ParseECC608(uri)
	if err != nil {
		return nil, err
	}
	node := fmt.Sprintf("/dev/i2c-%d", l.Bus)
	if _, err := os.Stat(node); err != nil {
		return nil, fmt.Errorf("keys: ecc608: %s: %w (enable I²C: dtparam=i2c_arm=on)", node, err)
	}
	bus, err := sysfs.NewI2C(l.Bus)
	if err != nil {
		return nil, fmt.Errorf("keys: ecc608: open %s: %w", node, err)
	}
	return atecc608.New(bus, &atecc608.Opts{Addr: l.Addr, Slot: l.Slot})
}

// Close releases what the signer holds open (a TPM connection).
func Close(s attest.Signer) error {
	if c, ok := s.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Describe says where a signer's key is, for `keys show` and doctor.
func Describe(s attest.Signer) string {
	if d, ok := describeTPM(s); ok {
		return d
	}
	switch k := s.(type) {
	case *atecc608.Signer:
		return k.Dev().String()
	}
	return "key file"
}

// CertPath is where the manufacturer certificate is kept when the config
// names none: next to a file key, or in the data directory.
func CertPath(dataDir string) string { return dataDir + "/device.crt" }

// ReadCert reads a PEM or DER certificate file.
func ReadCert(path string) (*x509.Certificate, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, nil, fmt.Errorf("keys: %s holds a %q PEM block, want CERTIFICATE", path, blk.Type)
		}
		b = blk.Bytes
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, nil, fmt.Errorf("keys: %s: %w", path, err)
	}
	return c, b, nil
}

// ErrCertMismatch is returned when a certificate is for another key.
var ErrCertMismatch = errors.New("keys: certificate is not for this device key")

// CheckCert checks the certificate names the signer's public key.
func CheckCert(s attest.Signer, c *x509.Certificate) error {
	pub, err := attest.PublicKey(s.Algorithm(), s.KeyID())
	if err != nil {
		return err
	}
	eq, ok := pub.(interface{ Equal(x crypto.PublicKey) bool })
	if !ok || !eq.Equal(c.PublicKey) {
		return fmt.Errorf("%w: it certifies a %T; the device key is %s", ErrCertMismatch, c.PublicKey, s.DeviceID())
	}
	return nil
}

// CSR writes a PKCS#10 certificate request for the device key, with the
// device id as the subject's common name, signed by the key itself.
func CSR(s attest.Signer, org string) ([]byte, error) {
	cs, err := attest.CryptoSigner(s)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.CertificateRequest{}
	tmpl.Subject.CommonName = s.DeviceID()
	if org != "" {
		tmpl.Subject.Organization = []string{org}
	}
	der, err := x509.CreateCertificateRequest(nil, tmpl, cs)
	if err != nil {
		return nil, fmt.Errorf("keys: certificate request: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// SignLatency signs n times and returns the median time of one signature:
// the figure doctor reports for a hardware key.
func SignLatency(s attest.Signer, n int) (time.Duration, error) {
	var ds []time.Duration
	msg := []byte("edge-agent doctor signature probe")
	for range n {
		t0 := time.Now()
		if _, err := s.Sign(nil, msg); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(t0))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2], nil
}
