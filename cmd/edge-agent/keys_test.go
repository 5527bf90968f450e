package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest/attesttest"
	"github.com/edge-agent/edge-agent/attest/tpmkey/tpmtest"
	"github.com/edge-agent/edge-agent/doctor"
)

// signCSR plays the factory CA: it checks the request's signature and
// issues a certificate for the key in it.
func signCSR(t *testing.T, csrPEM []byte, ca *x509.Certificate, caKey *ecdsa.PrivateKey) []byte {
	t.Helper()
	blk, _ := pem.Decode(csrPEM)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("keys csr wrote %q", csrPEM)
	}
	req, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := req.CheckSignature(); err != nil {
		t.Fatalf("the CSR's self-signature does not verify: %v", err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: req.Subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, req.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestKeysFactoryFlow walks the factory steps for a TPM key and a file key:
// keys init, keys show, keys csr, the CA signs, keys install-cert (which
// refuses another key's certificate), and doctor reports backend, algorithm,
// hardware, a measured signature time and the certificate.
func TestKeysFactoryFlow(t *testing.T) {
	tpm := tpmtest.Start(t)
	factory := attesttest.NewCA(t, "Factory CA")
	ca, caKey := factory.Cert, factory.Key
	for _, tt := range []struct {
		name, uri, alg string
		hardware       bool
	}{
		{"tpm", tpm.URI(), "ES256", true},
		{"file", "", "EdDSA", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			uri := tt.uri
			if uri == "" {
				uri = "file:" + filepath.Join(dir, "device.key")
			}
			cfg := writeConfig(t, dir, "")
			body, _ := os.ReadFile(cfg)
			os.WriteFile(cfg, []byte(strings.Replace(string(body), "file:"+dir+"/device.key", uri, 1)), 0o600)

			code, out, errOut := cli(t, "keys", "init", "-c", cfg, "--json")
			if code != 0 {
				t.Fatalf("keys init: %d %s", code, errOut)
			}
			var info struct {
				DeviceID  string `json:"device_id"`
				Algorithm string `json:"algorithm"`
				Hardware  bool   `json:"hardware"`
			}
			if err := json.Unmarshal([]byte(out), &info); err != nil || info.Algorithm != tt.alg || info.Hardware != tt.hardware {
				t.Fatalf("keys init: %s (%v)", out, err)
			}
			if code, _, errOut := cli(t, "keys", "init", "-c", cfg); code == 0 || !strings.Contains(errOut, "already") {
				t.Fatalf("second keys init: exit %d, %s", code, errOut)
			}
			code, out, _ = cli(t, "keys", "show", "-c", cfg)
			if code != 0 || !strings.Contains(out, info.DeviceID) || tt.hardware != strings.Contains(out, "not exportable") {
				t.Fatalf("keys show: %d %s", code, out)
			}
			csrFile := filepath.Join(dir, "device.csr")
			if code, _, errOut := cli(t, "keys", "csr", "-c", cfg, "--org", "ACME Hotspots", "--out", csrFile); code != 0 {
				t.Fatalf("keys csr: %s", errOut)
			}
			csr, _ := os.ReadFile(csrFile)
			certFile := filepath.Join(dir, "issued.pem")
			os.WriteFile(certFile, signCSR(t, csr, ca, caKey), 0o644)

			// Another key's certificate is refused.
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			otherDER, _ := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(7),
				NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}, ca, &other.PublicKey, caKey)
			otherFile := filepath.Join(dir, "other.pem")
			os.WriteFile(otherFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: otherDER}), 0o644)
			if code, _, errOut := cli(t, "keys", "install-cert", "-c", cfg, otherFile); code == 0 || !strings.Contains(errOut, "not for this device key") {
				t.Fatalf("install-cert of another key's certificate: exit %d, %s", code, errOut)
			}
			if code, out, errOut := cli(t, "keys", "install-cert", "-c", cfg, certFile); code != 0 || !strings.Contains(out, "installed") {
				t.Fatalf("install-cert: %d %s %s", code, out, errOut)
			}

			_, out, _ = runCmd(t.Context(), t, cmdDoctor, "--json", "-c", cfg, "--socket", filepath.Join(dir, "status.sock"))
			var r doctor.Report
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatal(err)
			}
			var keyMsg, certMsg string
			for _, res := range r.Results {
				switch res.Name {
				case "device key":
					keyMsg = res.Level.String() + " " + res.Message
				case "manufacturer certificate":
					certMsg = res.Level.String() + " " + res.Message
				}
			}
			t.Logf("doctor: %s | %s", keyMsg, certMsg)
			if !strings.HasPrefix(keyMsg, "ok ") || !strings.Contains(keyMsg, tt.alg) || !strings.Contains(keyMsg, info.DeviceID) {
				t.Errorf("doctor device key: %q", keyMsg)
			}
			if tt.hardware && !(strings.Contains(keyMsg, "not exportable") && strings.Contains(keyMsg, "signature p50")) {
				t.Errorf("doctor on a hardware key: %q", keyMsg)
			}
			if !strings.HasPrefix(certMsg, "ok ") || !strings.Contains(certMsg, "ACME Hotspots") || !strings.Contains(certMsg, "Factory CA") {
				t.Errorf("doctor certificate: %q", certMsg)
			}
		})
	}
}
