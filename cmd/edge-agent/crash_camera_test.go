package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/store"
)

// TestCrashCameraSIGKILL kills the real daemon with SIGKILL after the camera
// driver has emitted its files and before the pipeline committed them (an
// minute-long commit window): Emit's nil means queued, so the
// camera must not have recorded them as attested. After the restart and a
// clean stop, and one more start and stop, every file is in the outbox
// exactly once.
func TestCrashCameraSIGKILL(t *testing.T) {
	dir := t.TempDir()
	camDir := filepath.Join(dir, "dashcam")
	if err := os.Mkdir(camDir, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := range n {
		name := filepath.Join(camDir, fmt.Sprintf("seg%02d.mp4", i))
		if err := os.WriteFile(name, []byte(fmt.Sprintf("segment %d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := writeConfig(t, dir, fmt.Sprintf(`
[pipeline]
commit_interval = "1m"

[[drivers.camera]]
name = "cam"
dir = %q
settle = "100ms"
`, camDir))
	emitted := func(want uint64) func(*status.Doc) bool {
		return func(doc *status.Doc) bool {
			for _, d := range doc.Drivers {
				if d.Name == "cam" && d.Observations[drivers.KindCameraFile] >= want {
					return true
				}
			}
			return false
		}
	}

	// 1. Emitted (queued), not committed: SIGKILL.
	d := startDaemon(t, dir, cfgPath)
	if doc := d.waitFor(t, "the camera files emitted", emitted(n)); doc.Store.HeadSeq != 0 {
		t.Fatalf("store head %d before the kill: the window did not hold the records, the test proves nothing", doc.Store.HeadSeq)
	}
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.cmd.Wait()
	if got := cameraFiles(t, filepath.Join(dir, "outbox.db")); len(got) != 0 {
		t.Fatalf("the outbox holds camera records %v from the killed run: it was not killed between emit and commit", got)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "camera-cam.json")); err == nil {
		var s struct{ Files map[string]json.RawMessage }
		if json.Unmarshal(b, &s) == nil && len(s.Files) > 0 {
			t.Fatalf("after SIGKILL the camera state lists %d files as attested whose records were never stored: they are lost", len(s.Files))
		}
	}

	// 2. The restart attests them again; SIGTERM drains the pipeline.
	stopClean := func(d *daemon) {
		t.Helper()
		d.cmd.Process.Signal(syscall.SIGTERM)
		if err := d.cmd.Wait(); err != nil {
			logs, _ := os.ReadFile(d.log)
			t.Fatalf("daemon did not exit 0 on SIGTERM: %v\n%s", err, logs)
		}
	}
	d = startDaemon(t, dir, cfgPath)
	d.waitFor(t, "the camera files emitted again after the restart", emitted(n))
	stopClean(d)

	// 3. One more start with a new file: the old ones were recorded as
	// attested when the drain committed them, after the driver had stopped.
	if err := os.WriteFile(filepath.Join(camDir, "seg99.mp4"), []byte("late"), 0o644); err != nil {
		t.Fatal(err)
	}
	d = startDaemon(t, dir, cfgPath)
	d.waitFor(t, "the new camera file emitted", emitted(1))
	stopClean(d)

	got := cameraFiles(t, filepath.Join(dir, "outbox.db"))
	if len(got) != n+1 {
		t.Errorf("the outbox holds %d distinct camera files, want %d: %v", len(got), n+1, got)
	}
	for name, c := range got {
		if c != 1 {
			t.Errorf("%s attested %d times, want exactly once", name, c)
		}
	}
}

// cameraFiles counts the camera.file records in the outbox by file name.
func cameraFiles(t *testing.T, path string) map[string]int {
	t.Helper()
	st, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got := map[string]int{}
	err = st.Records(func(r store.Record) error {
		rec, err := attest.Decode(r.Data)
		if err != nil {
			return fmt.Errorf("seq %d: %w", r.Seq, err)
		}
		if rec.Claims.Kind != drivers.KindCameraFile {
			return nil
		}
		var cf drivers.CameraFile
		if err := cbor.Unmarshal(rec.Claims.Obs.(cbor.RawMessage), &cf); err != nil {
			return fmt.Errorf("seq %d: %w", r.Seq, err)
		}
		got[cf.Name]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}
