// Package tpmkey is a device key held in a TPM 2.0: a NIST P-256 signing key
// the TPM created and will not export, made persistent at a handle.
//
// The five commands it needs (ReadPublic, CreatePrimary, EvictControl,
// FlushContext, Sign) are marshalled here by hand from TPM 2.0 Library
// Part 3, with a password session. go-tpm's tpm2 package did the same job
// but added 320 KiB to the arm64 binary (reflection-driven marshalling of
// every TPM structure), more than this feature's whole size allowance.
//
// The TPM is reached through /dev/tpmrm0 (the kernel's resource manager) or
// a simulator's TCP command port (swtpm, the reference simulator). A Signer
// serialises its commands; when the TPM stops answering it drops the
// connection and dials again at the next signature, so a TPM that comes back
// is used again without a restart.
package tpmkey

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/veraison/go-cose"

	"github.com/edge-agent/edge-agent/attest"
)

// DefaultHandle is where `keys init` makes the key persistent: in the
// owner's persistent range (TCG handle registry: 0x81000000–0x817FFFFF).
const DefaultHandle = 0x81008EA0

// Location is where a tpm: URI points.
type Location struct {
	Device string // a character device, e.g. /dev/tpmrm0
	TCP    string // or a simulator's command port, host:port
	Handle uint32 // persistent handle of the key
}

func (l Location) String() string {
	where := l.Device
	if l.TCP != "" {
		where = "tcp://" + l.TCP
	}
	return fmt.Sprintf("tpm:%s?handle=%#x", where, l.Handle)
}

// ParseURI reads "tpm:/dev/tpmrm0", "tpm:tcp://127.0.0.1:2321" or "tpm:"
// (meaning /dev/tpmrm0), each with an optional "?handle=0x81…".
func ParseURI(uri string) (Location, error) {
	rest, ok := strings.CutPrefix(uri, "tpm:")
	if !ok {
		return Location{}, fmt.Errorf("tpmkey: %q is not a tpm: key uri", uri)
	}
	l := Location{Handle: DefaultHandle}
	path, query, _ := strings.Cut(rest, "?")
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return Location{}, fmt.Errorf("tpmkey: key uri %q: %w", uri, err)
		}
		for k := range q {
			if k != "handle" {
				return Location{}, fmt.Errorf("tpmkey: key uri %q: unknown parameter %q (only handle)", uri, k)
			}
		}
		h, err := strconv.ParseUint(q.Get("handle"), 0, 32)
		if err != nil || h < 0x81000000 || h > 0x81FFFFFF {
			return Location{}, fmt.Errorf("tpmkey: key uri %q: handle %q is not a persistent handle (0x81000000–0x81ffffff)", uri, q.Get("handle"))
		}
		l.Handle = uint32(h)
	}
	switch {
	case path == "":
		l.Device = "/dev/tpmrm0"
	case strings.HasPrefix(path, "tcp://"):
		l.TCP = strings.TrimPrefix(path, "tcp://")
		if _, _, err := net.SplitHostPort(l.TCP); err != nil {
			return Location{}, fmt.Errorf("tpmkey: key uri %q: %w", uri, err)
		}
	case strings.HasPrefix(path, "/"):
		l.Device = path
	default:
		return Location{}, fmt.Errorf("tpmkey: key uri %q: want tpm:/dev/tpmrm0 or tpm:tcp://host:port", uri)
	}
	return l, nil
}

// ErrNoKey is returned when no key is persistent at the handle.
var ErrNoKey = errors.New("tpmkey: no key at the handle")

// ErrExists is returned by Create when the handle already holds an object.
var ErrExists = errors.New("tpmkey: the handle already holds a key")

// transport sends one command and returns the whole response.
type transport interface {
	Send(cmd []byte) ([]byte, error)
	Close() error
}

// Signer is an ES256 key in a TPM. Safe for concurrent use.
type Signer struct {
	loc Location
	kid []byte
	id  string
	pub *ecdsa.PublicKey

	mu   sync.Mutex
	conn transport // nil after a failure, until the next dial
}

var _ attest.Signer = (*Signer)(nil)
var _ attest.DigestSigner = (*Signer)(nil)

func dial(l Location) (transport, error) {
	if l.TCP != "" {
		c, err := net.DialTimeout("tcp", l.TCP, 5*time.Second)
		if err != nil {
			return nil, fmt.Errorf("tpmkey: dial %s: %w", l.TCP, err)
		}
		return &simConn{c: c}, nil
	}
	f, err := os.OpenFile(l.Device, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("tpmkey: open %s: %w (is the TPM enabled, and is the agent's user in the tss group?)", l.Device, err)
	}
	return &devConn{f: f}, nil
}

// Open connects to the TPM and reads the public part of the key at the
// handle.
func Open(uri string) (*Signer, error) {
	l, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	conn, err := dial(l)
	if err != nil {
		return nil, err
	}
	s, err := load(l, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

func load(l Location, conn transport) (*Signer, error) {
	pub, err := readPublic(conn, l.Handle)
	if err != nil {
		if isHandleError(err) {
			return nil, fmt.Errorf("%w %#x on %s (create it with \"edge-agent keys init\")", ErrNoKey, l.Handle, l)
		}
		return nil, fmt.Errorf("tpmkey: read public key at %#x: %w", l.Handle, err)
	}
	ek, err := parsePublic(pub)
	if err != nil {
		return nil, fmt.Errorf("tpmkey: the object at %#x: %w", l.Handle, err)
	}
	kid, err := attest.P256KeyID(ek)
	if err != nil {
		return nil, err
	}
	id, err := attest.DeviceID(cose.AlgorithmES256, kid)
	if err != nil {
		return nil, err
	}
	return &Signer{loc: l, kid: kid, id: id, pub: ek, conn: conn}, nil
}

// Create makes a new P-256 key in the TPM and makes it persistent at the
// URI's handle. It refuses a handle that already holds something
// (ErrExists): a device identity is never replaced by accident.
func Create(uri string, rand io.Reader) (*Signer, error) {
	l, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	conn, err := dial(l)
	if err != nil {
		return nil, err
	}
	s, err := create(l, conn, rand)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

func create(l Location, conn transport, rand io.Reader) (*Signer, error) {
	if _, err := readPublic(conn, l.Handle); err == nil {
		return nil, fmt.Errorf("%w: %#x on %s (keep it; \"edge-agent keys show\" prints it)", ErrExists, l.Handle, l)
	} else if !isHandleError(err) {
		return nil, fmt.Errorf("tpmkey: create: check handle %#x: %w", l.Handle, err)
	}
	unique := make([]byte, 32)
	if _, err := io.ReadFull(rand, unique); err != nil {
		return nil, fmt.Errorf("tpmkey: create: read randomness: %w", err)
	}
	obj, err := createPrimary(conn, unique)
	if err != nil {
		return nil, fmt.Errorf("tpmkey: create primary key: %w", err)
	}
	defer flushContext(conn, obj)
	if err := evictControl(conn, obj, l.Handle); err != nil {
		return nil, fmt.Errorf("tpmkey: make the key persistent at %#x: %w", l.Handle, err)
	}
	return load(l, conn)
}

func (s *Signer) Algorithm() cose.Algorithm { return cose.AlgorithmES256 }
func (s *Signer) KeyID() []byte             { return append([]byte(nil), s.kid...) }
func (s *Signer) DeviceID() string          { return s.id }

// Location is where the key is.
func (s *Signer) Location() Location { return s.loc }

// Public is the key's public half.
func (s *Signer) Public() *ecdsa.PublicKey { return s.pub }

// Sign hashes content with SHA-256 and has the TPM sign the digest.
func (s *Signer) Sign(_ io.Reader, content []byte) ([]byte, error) {
	d := sha256.Sum256(content)
	return s.SignDigest(d[:])
}

// SignDigest has the TPM sign a SHA-256 digest and returns r||s.
func (s *Signer) SignDigest(digest []byte) ([]byte, error) {
	if len(digest) != sha256.Size {
		return nil, fmt.Errorf("tpmkey: sign: digest is %d bytes, want %d", len(digest), sha256.Size)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		c, err := dial(s.loc)
		if err != nil {
			return nil, fmt.Errorf("tpmkey: sign: %w", err)
		}
		s.conn = c
	}
	var r, ss []byte
	var err error
	for try := 0; ; try++ {
		r, ss, err = sign(s.conn, s.loc.Handle, digest)
		// RETRY, YIELDED and TESTING are warnings: the TPM was busy and
		// the command may simply be sent again (TPM 2.0 Part 2 §6.6.3).
		if try < 20 && isWarning(err) {
			time.Sleep(time.Duration(try+1) * 5 * time.Millisecond)
			continue
		}
		break
	}
	if err != nil {
		// Whatever broke, the next signature starts from a fresh
		// connection.
		s.conn.Close()
		s.conn = nil
		return nil, fmt.Errorf("tpmkey: sign with the key at %#x on %s: %w", s.loc.Handle, s.loc, err)
	}
	return attest.ES256Signature(r, ss)
}

// Close drops the connection to the TPM (the key stays in it).
func (s *Signer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// devConn is a TPM character device: one write is one command, one read
// the whole response.
type devConn struct{ f *os.File }

func (d *devConn) Send(cmd []byte) ([]byte, error) {
	if _, err := d.f.Write(cmd); err != nil {
		return nil, fmt.Errorf("tpmkey: write command: %w", err)
	}
	buf := make([]byte, 4096)
	n, err := d.f.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("tpmkey: read response: %w", err)
	}
	return buf[:n], nil
}

func (d *devConn) Close() error { return d.f.Close() }

// simConn speaks the TPM simulator's TCP command protocol (the TCG
// reference implementation's TpmTcpProtocol.h, which swtpm also serves):
// TPM_SEND_COMMAND (8), locality, length, command; the answer is length,
// response, then a 4-byte trailer. It needs no platform port: a simulator
// started with startup-clear is already on.
type simConn struct {
	c net.Conn
}

const simSendCommand = 8

func (t *simConn) Send(cmd []byte) ([]byte, error) {
	t.c.SetDeadline(time.Now().Add(30 * time.Second))
	hdr := make([]byte, 9, 9+len(cmd))
	binary.BigEndian.PutUint32(hdr, simSendCommand)
	hdr[4] = 0 // locality
	binary.BigEndian.PutUint32(hdr[5:], uint32(len(cmd)))
	if _, err := t.c.Write(append(hdr, cmd...)); err != nil {
		return nil, fmt.Errorf("tpmkey: simulator: send: %w", err)
	}
	var n [4]byte
	if _, err := io.ReadFull(t.c, n[:]); err != nil {
		return nil, fmt.Errorf("tpmkey: simulator: read response: %w", err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size == 0 || size > 1<<16 {
		return nil, fmt.Errorf("tpmkey: simulator: response of %d bytes", size)
	}
	rsp := make([]byte, size+4)
	if _, err := io.ReadFull(t.c, rsp); err != nil {
		return nil, fmt.Errorf("tpmkey: simulator: read response: %w", err)
	}
	return rsp[:size], nil
}

func (t *simConn) Close() error { return t.c.Close() }
