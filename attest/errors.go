package attest

import "errors"

// Sentinel errors. Functions wrap them with the operation and the file or
// record concerned; compare with errors.Is.
var (
	// ErrKeyExists is returned when CreateKey finds a key file already at the
	// path: a device identity is never overwritten.
	ErrKeyExists = errors.New("attest: key file already exists")

	// ErrKeyNotFound is returned when the key file named by the URI does not
	// exist.
	ErrKeyNotFound = errors.New("attest: key file not found")

	// ErrKeyInvalid is returned when the key file exists but is not a PKCS#8
	// PEM Ed25519 private key.
	ErrKeyInvalid = errors.New("attest: key file is not a PKCS#8 PEM Ed25519 private key")

	// ErrKeyEmpty is returned (with ErrKeyInvalid) when the key file has no
	// bytes at all: a first start interrupted between creating and writing it
	// by an edge-agent older than the atomic write. See ReplaceEmptyKey.
	ErrKeyEmpty = errors.New("attest: key file is empty")

	// ErrKeyPermissions is returned when the key file is readable or writable
	// by group or others, or is not a regular file. OpenSigner refuses such a
	// key: it may already be copied.
	ErrKeyPermissions = errors.New("attest: key file permissions too open")

	// ErrUnsupportedKeyScheme is returned when the key URI names a scheme this
	// file signer cannot use: anything but file: (tpm: and ecc608: keys are
	// opened by package attest/keys).
	ErrUnsupportedKeyScheme = errors.New("attest: key scheme not supported: use file:PATH, tpm:/dev/tpmrm0 or ecc608:/dev/i2c-N")

	// ErrBadSignature is returned when a record's signature does not verify
	// against the key in its protected header.
	ErrBadSignature = errors.New("attest: bad signature")

	// ErrMalformed is returned when bytes are not a well-formed record of
	// this format (envelope, header, payload or claim sanity), or when a CBOR
	// sequence holds a truncated or garbage item.
	ErrMalformed = errors.New("attest: malformed record")
)
