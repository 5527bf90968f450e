package attest

import (
	"crypto/sha256"

	"github.com/mr-tron/base58"
)

// libp2p key types, as in libp2p's crypto.proto (KeyType enum).
const (
	peerKeyEd25519 = 1
	peerKeyECDSA   = 3
)

// peerID returns the libp2p peer ID string of a public key: the protobuf
// PublicKey{Type, Data} message, as a multihash (identity when the message
// is at most 42 bytes, SHA2-256 otherwise), in base58btc. Written here so
// that builds without libp2p (-tags nop2p) name devices exactly as the
// network does; a test holds it to libp2p's own peer.IDFromPublicKey.
func peerID(keyType byte, data []byte) string {
	msg := make([]byte, 0, 4+len(data))
	msg = append(msg, 0x08, keyType, 0x12) // field 1 varint, field 2 bytes
	msg = appendUvarint(msg, uint64(len(data)))
	msg = append(msg, data...)
	var mh []byte
	if len(msg) <= 42 {
		mh = appendUvarint([]byte{0x00}, uint64(len(msg))) // identity
		mh = append(mh, msg...)
	} else {
		sum := sha256.Sum256(msg)
		mh = append([]byte{0x12, 0x20}, sum[:]...) // sha2-256, 32 bytes
	}
	return base58.Encode(mh)
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}
