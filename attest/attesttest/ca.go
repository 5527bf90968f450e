package attesttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
)

// CA is a manufacturer's certificate authority for tests: a P-256 key and
// its self-signed certificate, valid from an hour ago for a day. It issues
// device certificates, which devices send in agent.cert records.
type CA struct {
	Cert   *x509.Certificate
	Key    *ecdsa.PrivateKey
	serial atomic.Int64
}

// NewCA makes a CA whose certificate's common name is name.
func NewCA(tb testing.TB, name string) *CA {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	ca := &CA{Cert: c, Key: k}
	ca.serial.Store(1)
	return ca
}

// Issue returns the DER of a certificate for the public key of s, valid
// for 12 hours.
func (ca *CA) Issue(tb testing.TB, s attest.Signer, cn string) []byte {
	tb.Helper()
	return ca.IssueUntil(tb, s, cn, time.Now().Add(12*time.Hour))
}

// IssueUntil is Issue with a certificate that expires at notAfter (in the
// past for an expired one).
func (ca *CA) IssueUntil(tb testing.TB, s attest.Signer, cn string, notAfter time.Time) []byte {
	tb.Helper()
	pub, err := attest.PublicKey(s.Algorithm(), s.KeyID())
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(ca.serial.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// PEMFile writes the CA certificate as PEM into a temporary directory of
// tb and returns its path (what admission.trusted_manufacturers names).
func (ca *CA) PEMFile(tb testing.TB) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}
