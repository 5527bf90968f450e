// Package atomicfile writes a file so that a crash or power cut at any moment
// leaves either what was there before (or nothing) or the whole new file,
// never a torn or empty one. It writes a hidden temporary file in the same
// directory ("."+name+".tmp…"), fsyncs it, moves it into place and fsyncs the
// directory, so that the move itself survives the power cut.
//
// Errors are the os package's, which name the operation and the path; the
// caller wraps them once with what it was writing. The functions hold no
// state and are safe to call concurrently, for different paths.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFile replaces path with data, created with mode perm.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return write(path, perm, true, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Create puts data at path, created with mode perm, unless path exists: then
// it leaves that file alone and the error wraps fs.ErrExist. The move is a
// hard link, which cannot overwrite; on a filesystem without hard links it is
// a rename after a check (which a concurrent writer could race).
func Create(path string, data []byte, perm fs.FileMode) error {
	return write(path, perm, false, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write replaces path with what fill writes, created with mode perm. If fill
// fails, path is left as it was and fill's error is returned.
func Write(path string, perm fs.FileMode, fill func(io.Writer) error) error {
	return write(path, perm, true, fill)
}

func write(path string, perm fs.FileMode, replace bool, fill func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a failure; CreateTemp made it 0600
	err = tmp.Chmod(perm)
	if err == nil {
		err = fill(tmp)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if replace {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = os.Link(tmp.Name(), path)
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP) {
			if _, serr := os.Lstat(path); serr == nil {
				return &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
			}
			err = os.Rename(tmp.Name(), path)
		}
	}
	if err != nil {
		return err
	}
	os.Remove(tmp.Name()) // the link's second name, before the directory sync
	return SyncDir(dir)
}

// SyncDir makes the creation, rename or removal of a name in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
