package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/store"
)

// An interrupted first start leaves a 0-byte device.key: the next start
// replaces it while the outbox shows no identity was used, and refuses
// (naming the way out) when records signed by a lost key exist.
func TestEmptyKeyFromAnInterruptedFirstStart(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Device.DataDir = dir
	keyFile := filepath.Join(dir, "device.key")
	cfg.Device.Key = "file:" + keyFile
	cfg.Store.Path = filepath.Join(dir, "outbox.db")
	cfg.Status = config.Status{Socket: filepath.Join(dir, "status.sock")}
	cfg.Uplinks.File.Enabled = true
	if err := os.WriteFile(keyFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Config: &cfg, CreateKey: true, Version: "test"})
	if err != nil {
		t.Fatalf("New with an empty key and no outbox: %v", err)
	}
	a.Store().Close()
	if _, err := attest.OpenSigner(cfg.Device.Key); err != nil {
		t.Fatalf("the replaced key does not open: %v", err)
	}

	// Now a device that has signed: its outbox has a head.
	st, err := store.Open(cfg.Store.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append([]store.Entry{{Seq: 1, Data: []byte{0xd2}}}, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := os.Truncate(keyFile, 0); err != nil {
		t.Fatal(err)
	}
	_, err = New(Options{Config: &cfg, CreateKey: true, Version: "test"})
	if !errors.Is(err, attest.ErrKeyEmpty) || !strings.Contains(err.Error(), "restore the key from its backup") {
		t.Fatalf("New with an empty key beside signed records = %v, want ErrKeyEmpty and the way out", err)
	}
	if fi, _ := os.Stat(keyFile); fi == nil || fi.Size() != 0 {
		t.Fatal("the empty key of a used device was replaced")
	}
}
