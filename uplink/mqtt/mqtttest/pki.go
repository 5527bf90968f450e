package mqtttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a throwaway certificate authority for TLS tests.
type PKI struct {
	CAFile string // PEM certificate of the CA

	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewPKI creates a CA named name in a temporary directory.
func NewPKI(tb testing.TB, name string) *PKI {
	tb.Helper()
	p := &PKI{dir: tb.TempDir(), key: newKey(tb)}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.key.PublicKey, p.key)
	if err != nil {
		tb.Fatalf("mqtttest: create CA certificate: %v", err)
	}
	if p.cert, err = x509.ParseCertificate(der); err != nil {
		tb.Fatalf("mqtttest: parse CA certificate: %v", err)
	}
	p.CAFile = filepath.Join(p.dir, name+"-ca.pem")
	writePEM(tb, p.CAFile, "CERTIFICATE", der)
	return p
}

// Server issues a certificate for 127.0.0.1, ::1 and localhost and returns
// the certificate and key files.
func (p *PKI) Server(tb testing.TB) (certFile, keyFile string) {
	tb.Helper()
	return p.issue(tb, "server", time.Now().Add(24*time.Hour), func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		c.DNSNames = []string{"localhost"}
	})
}

// Client issues a client certificate named cn that expires at notAfter.
func (p *PKI) Client(tb testing.TB, cn string, notAfter time.Time) (certFile, keyFile string) {
	tb.Helper()
	return p.issue(tb, cn, notAfter, func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})
}

func (p *PKI) issue(tb testing.TB, cn string, notAfter time.Time, edit func(*x509.Certificate)) (string, string) {
	tb.Helper()
	key := newKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber: serial(tb),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	edit(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		tb.Fatalf("mqtttest: issue certificate %s: %v", cn, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatalf("mqtttest: marshal key %s: %v", cn, err)
	}
	certFile := filepath.Join(p.dir, cn+".pem")
	keyFile := filepath.Join(p.dir, cn+"-key.pem")
	writePEM(tb, certFile, "CERTIFICATE", der)
	writePEM(tb, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("mqtttest: generate key: %v", err)
	}
	return k
}

func serial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		tb.Fatalf("mqtttest: serial number: %v", err)
	}
	return n
}

func writePEM(tb testing.TB, path, typ string, der []byte) {
	tb.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatalf("mqtttest: write %s: %v", path, err)
	}
}
