package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteCreateAndFailedFill(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	expect := func(name, want string, perm fs.FileMode) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil || string(b) != want {
			t.Fatalf("%s: file holds %q (%v), want %q", name, b, err, want)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != perm {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), perm)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("%s: %d entries in the directory, want 1: temp files left behind", name, len(ents))
		}
	}
	if err := Create(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect("create", "one", 0o600)
	if err := Create(path, []byte("two"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over an existing file = %v, want fs.ErrExist", err)
	}
	expect("refused create", "one", 0o600)
	if err := WriteFile(path, []byte("three"), 0o644); err != nil {
		t.Fatal(err)
	}
	expect("replace", "three", 0o644)
	boom := errors.New("boom")
	err := Write(path, 0o600, func(w io.Writer) error {
		io.WriteString(w, "half")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write with a failing fill = %v, want its error", err)
	}
	expect("failed fill", "three", 0o644)
	if err := WriteFile(filepath.Join(dir, "missing", "f"), nil, 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteFile in a missing directory = %v, want fs.ErrNotExist", err)
	}
}
