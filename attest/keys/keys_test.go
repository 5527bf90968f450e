package keys

import (
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/edge-agent/edge-agent/attest"
)

func TestParseECC608(t *testing.T) {
	for _, tt := range []struct {
		uri  string
		want ECC608Location
		err  bool
	}{
		{"ecc608:", ECC608Location{Bus: 1, Addr: 0x60}, false},
		{"ecc608:/dev/i2c-3?addr=0x35&slot=2", ECC608Location{Bus: 3, Addr: 0x35, Slot: 2}, false},
		{"ecc608:/dev/i2c-1?slot=16", ECC608Location{}, true},
		{"ecc608:/dev/i2c-1?addr=0xc0", ECC608Location{}, true}, // 8-bit notation
		{"ecc608:i2c-1", ECC608Location{}, true},
		{"ecc608:/dev/i2c-1?bus=2", ECC608Location{}, true},
	} {
		got, err := ParseECC608(tt.uri)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseECC608(%q) = %+v, %v", tt.uri, got, err)
		}
	}
}

func TestBackend(t *testing.T) {
	for uri, want := range map[string]string{
		"file:/k": "file", "/k": "file", "tpm:/dev/tpmrm0": "tpm", "tpm:tcp://127.0.0.1:1": "tpm", "ecc608:/dev/i2c-1": "ecc608",
	} {
		if got := Backend(uri); got != want || Hardware(uri) != (want != "file") {
			t.Errorf("Backend(%q) = %q", uri, got)
		}
	}
}

// TestFileKeyCSRAndCert: the file backend through this package: create,
// refuse to create again, a CSR signed by the key.
func TestFileKeyCSRAndCert(t *testing.T) {
	uri := "file:" + filepath.Join(t.TempDir(), "k.pem")
	s, err := Create(uri, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Create(uri, rand.Reader); !IsExists(err) {
		t.Fatalf("second Create: %v", err)
	}
	if _, err := Open(uri + ".missing"); !IsNotFound(err) {
		t.Fatalf("Open of a missing key: %v", err)
	}
	pemBytes, err := CSR(s, "ACME")
	if err != nil || len(pemBytes) == 0 {
		t.Fatalf("CSR: %v", err)
	}
	if _, err := attest.CryptoSigner(s); err != nil {
		t.Fatal(err)
	}
}
