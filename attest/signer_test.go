package attest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/veraison/go-cose"
)

func TestKnownKey(t *testing.T) {
	s := testSigner(t, 0)
	if got := hex.EncodeToString(s.KeyID()); got != rfc8032Pub {
		t.Fatalf("KeyID = %s, want RFC 8032 public key %s", got, rfc8032Pub)
	}
	if s.Algorithm() != cose.AlgorithmEdDSA {
		t.Fatalf("Algorithm = %v, want EdDSA", s.Algorithm())
	}
	// RFC 8032 TEST 1 signs the empty message.
	sig, err := s.Sign(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	const want = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
	if got := hex.EncodeToString(sig); got != want {
		t.Fatalf("signature of empty message = %s, want %s", got, want)
	}
}

func TestDeviceIDMatchesLibp2p(t *testing.T) {
	for i := range 5 {
		_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := pub.Raw()
		if err != nil {
			t.Fatal(err)
		}
		want, err := peer.IDFromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DeviceID(cose.AlgorithmEdDSA, raw)
		if err != nil {
			t.Fatalf("key %d: DeviceID: %v", i, err)
		}
		if got != want.String() {
			t.Fatalf("key %d: DeviceID = %s, libp2p says %s", i, got, want)
		}
		if !strings.HasPrefix(got, "12D3KooW") {
			t.Fatalf("key %d: DeviceID %s lacks the Ed25519 peer ID prefix 12D3KooW", i, got)
		}
	}
	// The test signer's id, pinned: the record format's device ids must not
	// drift with a library upgrade.
	s := testSigner(t, 0)
	pk, err := crypto.UnmarshalEd25519PublicKey(s.KeyID())
	if err != nil {
		t.Fatal(err)
	}
	want, err := peer.IDFromPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	if s.DeviceID() != want.String() {
		t.Fatalf("signer DeviceID = %s, libp2p says %s", s.DeviceID(), want)
	}
}

func TestDeviceIDRejects(t *testing.T) {
	tests := []struct {
		name string
		alg  cose.Algorithm
		kid  []byte
	}{
		{"es256", cose.AlgorithmES256, make([]byte, 65)},
		{"short kid", cose.AlgorithmEdDSA, make([]byte, 31)},
		{"nil kid", cose.AlgorithmEdDSA, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if id, err := DeviceID(tt.alg, tt.kid); err == nil {
				t.Fatalf("DeviceID = %q, want an error", id)
			}
		})
	}
}

// seedReader is a deterministic "random" source for CreateKey.
type seedReader byte

func (r seedReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r) + byte(i)
	}
	return len(p), nil
}

func TestCreateAndOpenKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "device.pem")
	created, err := CreateKey("file:"+path, seedReader(7))
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode = %04o, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm()&0o077 != 0 {
		t.Fatalf("created key directory mode = %04o, want no group/other bits", di.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Fatalf("key file is not PKCS#8 PEM:\n%s", data)
	}

	for _, uri := range []string{"file:" + path, path, "file://" + path} {
		t.Run(uri, func(t *testing.T) {
			s, err := OpenSigner(uri)
			if err != nil {
				t.Fatalf("OpenSigner: %v", err)
			}
			if s.DeviceID() != created.DeviceID() || !bytes.Equal(s.KeyID(), created.KeyID()) {
				t.Fatalf("opened key %s differs from created %s", s.DeviceID(), created.DeviceID())
			}
		})
	}

	// The same randomness gives the same identity: CreateKey used the reader.
	again, err := CreateKey(filepath.Join(dir, "again.pem"), seedReader(7))
	if err != nil {
		t.Fatal(err)
	}
	if again.DeviceID() != created.DeviceID() {
		t.Fatalf("same seed gave %s and %s: CreateKey ignored its reader", again.DeviceID(), created.DeviceID())
	}

	_, err = CreateKey("file:"+path, seedReader(9))
	if !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second CreateKey error = %v, want ErrKeyExists", err)
	}
	s, err := OpenSigner(path)
	if err != nil || s.DeviceID() != created.DeviceID() {
		t.Fatalf("key changed after refused overwrite: %v", err)
	}
}

func TestOpenSignerErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.pem")
	if _, err := CreateKey(good, seedReader(1)); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // beat the umask
			t.Fatal(err)
		}
		return p
	}
	goodPEM, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		uri     string
		want    error
		message string // must appear in the error text
	}{
		{"world readable", write("open.pem", goodPEM, 0o644), ErrKeyPermissions, `run "chmod 600 ` + filepath.Join(dir, "open.pem") + `"`},
		{"group readable", write("group.pem", goodPEM, 0o640), ErrKeyPermissions, "chmod 600"},
		{"directory", dir, ErrKeyPermissions, "not a regular file"},
		{"missing", filepath.Join(dir, "nope.pem"), ErrKeyNotFound, "keys init"},
		{"garbage", write("garbage.pem", []byte("not a key\n"), 0o600), ErrKeyInvalid, ""},
		{"wrong pem type", write("cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), 0o600), ErrKeyInvalid, ""},
		{"ecdsa key", write("ec.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), 0o600), ErrKeyInvalid, "Ed25519"},
		{"bad der", write("der.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x01}}), 0o600), ErrKeyInvalid, ""},
		{"trailing data", write("trail.pem", append(bytes.Clone(goodPEM), "junk"...), 0o600), ErrKeyInvalid, ""},
		{"tpm", "tpm:/dev/tpmrm0", ErrUnsupportedKeyScheme, "key scheme not supported: use file:"},
		{"ecc608", "ecc608:i2c-1@0x60", ErrUnsupportedKeyScheme, "key scheme not supported: use file:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := OpenSigner(tt.uri)
			if !errors.Is(err, tt.want) {
				t.Fatalf("OpenSigner(%q) = %v, %v; want error %v", tt.uri, s, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("error %q does not say %q", err, tt.message)
			}
			if !strings.HasPrefix(err.Error(), "attest: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
	if _, err := OpenSigner(good); err != nil {
		t.Fatalf("OpenSigner(0600 key) = %v", err)
	}
}

func TestCreateKeyRefusesScheme(t *testing.T) {
	if _, err := CreateKey("tpm:0x81000001", seedReader(1)); !errors.Is(err, ErrUnsupportedKeyScheme) {
		t.Fatalf("CreateKey(tpm:) = %v, want ErrUnsupportedKeyScheme", err)
	}
	if _, err := CreateKey(filepath.Join(t.TempDir(), "k.pem"), bytes.NewReader([]byte{1, 2})); err == nil {
		t.Fatal("CreateKey with 2 bytes of randomness succeeded")
	}
}

// WriteKeyFile never overwrites without replace, leaves no temporary file,
// and the file has mode 0600.
func TestWriteKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k.pem")
	if err := WriteKeyFile(path, []byte("one"), false); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(path, []byte("two"), false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write without replace = %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one" {
		t.Fatalf("file holds %q after a refused write", b)
	}
	if err := WriteKeyFile(path, []byte("three"), true); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	fi, _ := os.Stat(path)
	if b, _ := os.ReadFile(path); string(b) != "three" || len(ents) != 1 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("after replace: %q, %d entries, mode %v", b, len(ents), fi.Mode())
	}
	// An empty key file is ErrKeyEmpty, and only an empty one may be replaced.
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, nil, 0o600)
	if _, err := OpenSigner("file:" + empty); !errors.Is(err, ErrKeyEmpty) || !errors.Is(err, ErrKeyInvalid) {
		t.Fatalf("OpenSigner(empty) = %v, want ErrKeyEmpty and ErrKeyInvalid", err)
	}
	if _, err := ReplaceEmptyKey("file:"+path, strings.NewReader(strings.Repeat("x", 32))); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("ReplaceEmptyKey over a non-empty file = %v, want ErrKeyExists", err)
	}
	if _, err := ReplaceEmptyKey("file:"+empty, strings.NewReader(strings.Repeat("x", 32))); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSigner("file:" + empty); err != nil {
		t.Fatalf("replaced key: %v", err)
	}
}
