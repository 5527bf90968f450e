package agent

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/keys"
)

func selfCert(t *testing.T, pub, priv any) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestCertRecord: an installed certificate goes out in an agent.cert record
// right after agent.boot; a certificate for another key stops the start.
func TestCertRecord(t *testing.T) {
	dir := t.TempDir()
	cfg := configIn(dir)
	s, err := attest.CreateKey(cfg.Device.Key, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv := s.(interface{ Ed25519PrivateKey() ed25519.PrivateKey }).Ed25519PrivateKey()

	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	os.WriteFile(cfg.CertPath(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: selfCert(t, otherPriv.Public(), otherPriv)}), 0o644)
	if _, err := New(Options{Config: &cfg, Version: "test"}); !errors.Is(err, keys.ErrCertMismatch) {
		t.Fatalf("start with another key's certificate: %v, want ErrCertMismatch", err)
	}

	der := selfCert(t, priv.Public(), priv)
	os.WriteFile(cfg.CertPath(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	a, err := New(Options{Config: &cfg, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := runFor(t, a, 300*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	recs := storedRecords(t, cfg.Store.Path)
	if len(recs) < 2 || recs[0].Claims.Kind != attest.KindBoot || recs[1].Claims.Kind != attest.KindCert {
		t.Fatalf("first records %d, want agent.boot then agent.cert", len(recs))
	}
	var c attest.Cert
	if err := cbor.Unmarshal(recs[1].Claims.Obs.(cbor.RawMessage), &c); err != nil || !bytes.Equal(c.DER, der) {
		t.Fatalf("agent.cert obs: %v", err)
	}
}
