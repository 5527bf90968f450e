package pgstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/collect"
)

// TestManufacturerIdentityFromStore: `edge-collector status` judges devices
// from the agent.cert records PostgreSQL holds (collect.Identify over the
// store's Export): a certificate for the device key from the trusted CA is
// genuine, one for another key is not, no agent.cert is no certificate.
func TestManufacturerIdentityFromStore(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Factory CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	issue := func(s attest.Signer) []byte {
		pub, _ := attest.PublicKey(s.Algorithm(), s.KeyID())
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "board"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}, ca, pub, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	var devs [3]attest.Signer
	for i := range devs {
		devs[i], _ = attest.CreateKey("file:"+filepath.Join(dir, string(rune('a'+i))), rand.Reader)
	}
	var raws [][]byte
	for i, s := range devs {
		var prev [32]byte
		obs := []any{attest.Boot{Version: "t", Reason: attest.BootNewChain}}
		switch i {
		case 0:
			obs = append(obs, attest.Cert{DER: issue(s)})
		case 1:
			obs = append(obs, attest.Cert{DER: issue(devs[0])})
		}
		for j, o := range obs {
			kind := attest.KindBoot
			if j == 1 {
				kind = attest.KindCert
			}
			c := attest.Claims{Chain: [16]byte{3}, Seq: uint64(j + 1), Prev: prev, Time: time.Now().UnixNano(), Kind: kind, Source: "agent", Obs: o}
			p, err := attest.EncodePayload(&c)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := attest.SignPayload(s, p)
			if err != nil {
				t.Fatal(err)
			}
			prev = attest.PayloadHash(p)
			raws = append(raws, raw)
		}
	}
	ctx := context.Background()
	st := open(t, database(t))
	if _, err := st.Commit(ctx, decode(t, raws...), time.Now()); err != nil {
		t.Fatal(err)
	}
	sum, err := st.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := collect.DefaultConfig()
	cfg.Admission.TrustedManufacturers = []string{caFile}
	if err := collect.Identify(&cfg, sum, func(w io.Writer) (int, error) { return st.Export(ctx, w) }); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{devs[0].DeviceID(): collect.IdentityGenuine, devs[1].DeviceID(): collect.IdentityNotGenuine,
		devs[2].DeviceID(): collect.IdentityNoCert}
	if len(sum) != 3 {
		t.Fatalf("%d devices, want 3", len(sum))
	}
	for _, d := range sum {
		if d.Identity == nil || d.Identity.Status != want[d.Device] {
			t.Errorf("%s: %+v, want %q", d.Device, d.Identity, want[d.Device])
		}
	}
}
