package file

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// repairAll seals every .part file left in Dir by an earlier run or a failed
// write. Run calls it only while no file is open.
func (u *Uplink) repairAll() error {
	parts, err := filepath.Glob(filepath.Join(globEscape(u.o.Dir), "*"+partExt))
	if err != nil {
		return fmt.Errorf("uplink/file: list leftover spool files: %w", err)
	}
	for _, p := range parts {
		if err := u.repair(p); err != nil {
			return err
		}
	}
	return nil
}

// repair keeps the longest prefix of complete COSE_Sign1 items in a .part
// file and seals it. A crash mid-write leaves at most one torn item at the
// end, or zeros where the filesystem extended the file but never wrote the
// data; anything else undecodable is kept aside in a .tail file for a human,
// since a verifier should see that the disk damaged acked records.
func (u *Uplink) repair(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("uplink/file: open leftover %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("uplink/file: stat leftover %s: %w", path, err)
	}
	good, items, stop := scanRecords(f)
	dropped := st.Size() - good
	torn := errors.Is(stop, io.ErrUnexpectedEOF) || allZero(f, good)
	if dropped > 0 && !torn {
		// Not just a torn last item: keep the bytes for inspection.
		tail := strings.TrimSuffix(path, partExt) + ".tail"
		if err := copyTail(f, good, tail); err != nil {
			f.Close()
			return fmt.Errorf("uplink/file: save damaged tail of %s: %w", path, err)
		}
		u.log.Error("uplink/file: leftover spool file holds undecodable data, not just a torn record; kept it aside",
			"file", path, "tail", tail, "bytes", dropped, "reason", stop,
			"hint", "check the disk for errors; the tail file is not part of the export")
	}
	if dropped > 0 {
		if err := f.Truncate(good); err != nil {
			f.Close()
			return fmt.Errorf("uplink/file: truncate leftover %s: %w", path, err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("uplink/file: fsync leftover %s: %w", path, err)
	}
	final, err := u.sealFile(f, good)
	if err != nil {
		return err
	}
	u.log.Info("uplink/file: repaired leftover spool file", "file", path, "sealed_as", final,
		"records", items, "torn_bytes_dropped", dropped)
	return nil
}

// scanRecords reads r from the start and returns the length of the longest
// prefix made of complete COSE_Sign1 items, their count, and why it stopped
// (io.EOF at a clean end, io.ErrUnexpectedEOF for a torn last item).
func scanRecords(r io.Reader) (good int64, items int, stop error) {
	dec := cbor.NewDecoder(r)
	for {
		var raw cbor.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return good, items, err
		}
		if err := checkSign1(raw); err != nil {
			return good, items, err
		}
		good = int64(dec.NumBytesRead())
		items++
	}
}

// sign1 is a COSE_Sign1 (RFC 9052 §4.2) without its tag.
type sign1 struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected map[any]any
	Payload     []byte // nil for a detached payload
	Signature   []byte
}

// checkSign1 tells a record from a well-formed item that only looks like one
// by accident, such as the zeros a filesystem can leave after a crash.
func checkSign1(raw []byte) error {
	var tag cbor.RawTag
	if err := cbor.Unmarshal(raw, &tag); err != nil {
		return fmt.Errorf("not a tagged item: %w", err)
	}
	if tag.Number != 18 {
		return fmt.Errorf("CBOR tag %d, want 18 (COSE_Sign1)", tag.Number)
	}
	var m sign1
	if err := cbor.Unmarshal(tag.Content, &m); err != nil {
		return fmt.Errorf("not a COSE_Sign1: %w", err)
	}
	if len(m.Signature) == 0 {
		return errors.New("COSE_Sign1 without signature")
	}
	return nil
}

func copyTail(f *os.File, off int64, path string) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, io.NewSectionReader(f, off, 1<<62))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// globEscape quotes the glob metacharacters in a directory name.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// allZero reports whether f holds only zero bytes from off to its end.
func allZero(f *os.File, off int64) bool {
	buf := make([]byte, 32<<10)
	r := io.NewSectionReader(f, off, 1<<62)
	for {
		n, err := r.Read(buf)
		for _, b := range buf[:n] {
			if b != 0 {
				return false
			}
		}
		if err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}
