package sim

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/edge-agent/edge-agent/atomicfile"
	"github.com/edge-agent/edge-agent/drivers"
)

// KeepFiles is how many segment files a simulated camera keeps in its
// directory; older ones are deleted, as a dashcam's loop recording does, so a
// long demo cannot fill the disk.
const KeepFiles = 20

// segmentName matches the names the simulated camera writes, like a dashcam's
// loop recording: 20261121_101500_0001.mp4.
var segmentName = regexp.MustCompile(`^[0-9]{8}_[0-9]{6}_[0-9]{4}\.mp4$`)

func (d *Dev) runCamera(ctx context.Context, emit drivers.Emit) error {
	if err := os.MkdirAll(d.o.Dir, 0o750); err != nil {
		return fmt.Errorf("sim: %s: create camera dir: %w", d.name, err)
	}
	// Files from an earlier run count towards KeepFiles, so restarts do not
	// pile up segments.
	entries, err := os.ReadDir(d.o.Dir)
	if err != nil {
		return fmt.Errorf("sim: %s: list camera dir: %w", d.name, err)
	}
	var kept []string
	for _, e := range entries {
		if e.Type().IsRegular() && segmentName.MatchString(e.Name()) {
			kept = append(kept, e.Name())
		}
	}
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(d.o.Seed))
	copy(seed[8:], "edge-agent sim camera")
	content := rand.NewChaCha8(seed)
	rng := d.rng(4)
	seq := 0
	return d.loop(ctx, emit, func(int) (drivers.Observation, error) {
		now := d.o.Now()
		var name string
		for {
			seq = seq%9999 + 1
			name = fmt.Sprintf("%s_%04d.mp4", now.UTC().Format("20060102_150405"), seq)
			if _, err := os.Lstat(filepath.Join(d.o.Dir, name)); errors.Is(err, fs.ErrNotExist) {
				break
			}
		}
		size := int64(64<<10 + rng.IntN(192<<10+1))
		cf, err := writeSegment(d.o.Dir, name, size, content)
		if err != nil {
			return drivers.Observation{}, fmt.Errorf("sim: %s: %w", d.name, err)
		}
		kept = append(kept, name)
		slices.Sort(kept)
		for len(kept) > KeepFiles {
			if err := os.Remove(filepath.Join(d.o.Dir, kept[0])); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return drivers.Observation{}, fmt.Errorf("sim: %s: delete old segment: %w", d.name, err)
			}
			kept = kept[1:]
		}
		return drivers.Observation{Kind: drivers.KindCameraFile, Time: now, Data: cf}, nil
	})
}

// writeSegment writes size bytes shaped like an MP4 (an ftyp box, then one
// mdat box of pseudo-random "video") atomically (package atomicfile: a
// hidden temporary name, fsync, rename), so a watcher never sees a half-written
// segment. The SHA-256 is computed while writing, as the real camera driver
// streams it while reading.
func writeSegment(dir, name string, size int64, content io.Reader) (drivers.CameraFile, error) {
	h := sha256.New()
	final := filepath.Join(dir, name)
	err := atomicfile.Write(final, 0o640, func(f io.Writer) error {
		w := io.MultiWriter(f, h)
		ftyp := []byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
		var mdat [8]byte
		binary.BigEndian.PutUint32(mdat[:], uint32(size-int64(len(ftyp))))
		copy(mdat[4:], "mdat")
		if _, err := w.Write(append(ftyp, mdat[:]...)); err != nil {
			return err
		}
		_, err := io.CopyN(w, content, size-int64(len(ftyp)+len(mdat)))
		return err
	})
	if err != nil {
		return drivers.CameraFile{}, fmt.Errorf("write segment %s: %w", name, err)
	}
	st, err := os.Stat(final)
	if err != nil {
		return drivers.CameraFile{}, fmt.Errorf("stat segment %s: %w", name, err)
	}
	return drivers.CameraFile{
		Name:          name,
		Size:          st.Size(),
		SHA256:        h.Sum(nil),
		MTimeUnixNano: st.ModTime().UnixNano(),
	}, nil
}
