package attest

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/veraison/go-cose"

	"github.com/edge-agent/edge-agent/atomicfile"
)

// Signer signs on the device. Implementations are safe for concurrent use
// (the pipeline signs on several cores).
type Signer interface {
	// Algorithm is the COSE algorithm: cose.AlgorithmEdDSA now; ES256 for
	// secure elements later.
	Algorithm() cose.Algorithm
	// Sign returns the COSE-format signature over content (it satisfies
	// cose.Signer).
	Sign(rand io.Reader, content []byte) ([]byte, error)
	// KeyID is the raw public key; it goes in the protected header as kid.
	KeyID() []byte
	// DeviceID is the libp2p peer ID string of the public key ("12D3KooW…").
	DeviceID() string
}

// maxKeyFileSize bounds what OpenSigner reads: a PKCS#8 PEM Ed25519 key is
// about 120 bytes, so anything large is not a key.
const maxKeyFileSize = 16 << 10

// signBatch signs many messages with one key at once, in order (batch.go;
// nil in builds without the batch signer).
type signBatch func(msgs [][]byte) [][]byte

// fileSigner is an Ed25519 key held in memory, loaded from a PEM file.
type fileSigner struct {
	priv  ed25519.PrivateKey
	batch signBatch // the same key, for SignPayloads; nil in builds without the batch signer
	pub   []byte
	id    string
}

var _ cose.Signer = (*fileSigner)(nil)

func newFileSigner(priv ed25519.PrivateKey) (*fileSigner, error) {
	pub := []byte(priv.Public().(ed25519.PublicKey))
	id, err := DeviceID(cose.AlgorithmEdDSA, pub)
	if err != nil {
		return nil, err
	}
	batch, err := newBatchSigner(priv)
	if err != nil {
		return nil, fmt.Errorf("attest: key: %w", err)
	}
	return &fileSigner{priv: priv, batch: batch, pub: pub, id: id}, nil
}

func (s *fileSigner) Algorithm() cose.Algorithm { return cose.AlgorithmEdDSA }

// Sign ignores rand: Ed25519 signatures are deterministic.
func (s *fileSigner) Sign(_ io.Reader, content []byte) ([]byte, error) {
	return ed25519.Sign(s.priv, content), nil
}

// KeyID returns a copy so callers cannot change the signer's identity.
func (s *fileSigner) KeyID() []byte    { return append([]byte(nil), s.pub...) }
func (s *fileSigner) DeviceID() string { return s.id }

// Ed25519PrivateKey exposes the key for transports whose own identity is the
// device key (the libp2p host of uplink/p2p), so the device id is the host's
// peer ID. Secure-element signers will not implement it: their key never
// leaves the chip.
func (s *fileSigner) Ed25519PrivateKey() ed25519.PrivateKey { return s.priv }

// DeviceID returns the libp2p peer ID string of the public key kid, as found
// in a record's protected header (EdDSA: a 32-byte Ed25519 key).
//
// An ES256 kid (a compressed P-256 point) gives libp2p's ECDSA peer ID
// ("Qm…"), which hashes the PKIX DER form of the key.
func DeviceID(alg cose.Algorithm, kid []byte) (string, error) {
	if alg == cose.AlgorithmES256 {
		return p256DeviceID(kid)
	}
	if alg != cose.AlgorithmEdDSA {
		return "", fmt.Errorf("attest: device id: algorithm %v is not supported by this build (EdDSA, ES256)", alg)
	}
	if len(kid) != ed25519.PublicKeySize {
		return "", fmt.Errorf("attest: device id: Ed25519 kid is %d bytes, want %d", len(kid), ed25519.PublicKeySize)
	}
	return peerID(peerKeyEd25519, kid), nil
}

// keyPath resolves a key URI to a file path. It accepts "file:/path",
// "file:///path", "file:relative" and a bare path; it refuses any other
// scheme with ErrUnsupportedKeyScheme.
func keyPath(uri string) (string, error) {
	if uri == "" {
		return "", fmt.Errorf("attest: key uri is empty: set it to file:/path/to/key.pem")
	}
	if scheme, rest, ok := strings.Cut(uri, ":"); ok && isScheme(scheme) {
		if scheme != "file" {
			return "", fmt.Errorf("%w (key uri %q)", ErrUnsupportedKeyScheme, uri)
		}
		if p, ok := strings.CutPrefix(rest, "//"); ok {
			// file://host/path: only the empty host (file:///path) makes sense.
			if !strings.HasPrefix(p, "/") {
				return "", fmt.Errorf("attest: key uri %q: use file:/absolute/path (no host)", uri)
			}
			rest = p
		}
		if rest == "" {
			return "", fmt.Errorf("attest: key uri %q has no path: use file:/path/to/key.pem", uri)
		}
		return rest, nil
	}
	return uri, nil
}

// isScheme reports whether s looks like a URI scheme (RFC 3986 §3.1) rather
// than the start of a path such as "./a:b" or "/tmp/x:y".
func isScheme(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// OpenSigner loads the device key named by uri: "file:/path/key.pem" or a
// bare path, holding a PKCS#8 PEM Ed25519 private key. It refuses a key file
// that group or others may read or write (ErrKeyPermissions).
func OpenSigner(uri string) (Signer, error) {
	path, err := keyPath(uri)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (create one with \"edge-agent keys init\")", ErrKeyNotFound, path)
	}
	if err != nil {
		return nil, fmt.Errorf("attest: open key %s: %w", path, err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the mode checked is the mode of
	// the bytes read.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("attest: open key %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrKeyPermissions, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o, so group or others can reach the device key; run \"chmod 600 %s\" (and treat the key as exposed if others could read it)",
			ErrKeyPermissions, path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("attest: read key %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrKeyInvalid, path, maxKeyFileSize)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: %w: %s has 0 bytes (a first start interrupted while writing it?)", ErrKeyInvalid, ErrKeyEmpty, path)
	}
	priv, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrKeyInvalid, path, err)
	}
	return newFileSigner(priv)
}

func parseKey(data []byte) (ed25519.PrivateKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("PEM block is %q, want \"PRIVATE KEY\"", block.Type)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("data after the PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want Ed25519", k)
	}
	return priv, nil
}

// CreateKey generates an Ed25519 key from rand and writes it to the file
// named by uri as PKCS#8 PEM with mode 0600. It never overwrites a key
// (ErrKeyExists) and creates a missing parent directory with mode 0700.
// The key appears under its name whole or not at all (see WriteKeyFile): a
// factory-provisioned identity must survive a power cut at any moment.
func CreateKey(uri string, rand io.Reader) (Signer, error) {
	return createKey(uri, rand, false)
}

// ReplaceEmptyKey is CreateKey over a key file that exists and is empty (0
// bytes, ErrKeyEmpty). An empty file holds no key, so nothing was ever signed
// with it; whether the device had an identity before that a new one would
// abandon is the caller's question (the daemon asks its outbox). It refuses
// any other file with ErrKeyExists.
func ReplaceEmptyKey(uri string, rand io.Reader) (Signer, error) {
	return createKey(uri, rand, true)
}

func createKey(uri string, rand io.Reader, overEmpty bool) (Signer, error) {
	path, err := keyPath(uri)
	if err != nil {
		return nil, err
	}
	// Read the seed ourselves: ed25519.GenerateKey may ignore its reader,
	// and tests and factories need the reader they pass to be used.
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("attest: create key %s: read randomness: %w", path, err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("attest: create key %s: %w", path, err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("attest: create key %s: make directory: %w", path, err)
	}
	if overEmpty {
		if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
			return nil, fmt.Errorf("%w: %s is not an empty key file", ErrKeyExists, path)
		}
	}
	err = WriteKeyFile(path, pemBytes, overEmpty)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%w: %s (keep it; move it away first only if this device needs a new identity)", ErrKeyExists, path)
	}
	if err != nil {
		return nil, fmt.Errorf("attest: create key %s: %w", path, err)
	}
	return newFileSigner(priv)
}

// WriteKeyFile puts data at path with mode 0600 so that a power cut at any
// moment leaves either no file (or the file that was there) or the whole new
// one, never a torn or empty one (package atomicfile). With replace false an
// existing path is left alone and the error wraps fs.ErrExist. Any backend
// that keeps key material or a key handle in a file should write it with this.
func WriteKeyFile(path string, data []byte, replace bool) error {
	if replace {
		return atomicfile.WriteFile(path, data, 0o600)
	}
	return atomicfile.Create(path, data, 0o600)
}
