package agent

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/store"
)

// auditStore verifies every record in st as a collector would.
func auditStore(t testing.TB, st *store.Store) (attest.Report, []*attest.Record) {
	t.Helper()
	audit := attest.NewAudit(attest.AuditOptions{})
	var recs []*attest.Record
	err := st.Records(func(r store.Record) error {
		v, rec, err := audit.Add(r.Data)
		if v != attest.Accepted {
			return fmt.Errorf("seq %d: %v %v", r.Seq, v, err)
		}
		if rec.Claims.Seq != r.Seq {
			return fmt.Errorf("store seq %d holds record seq %d", r.Seq, rec.Claims.Seq)
		}
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return audit.Report(), recs
}

// configIn is the default config with every path under dir: key, outbox,
// status socket.
func configIn(dir string) config.Config {
	cfg := config.Default()
	cfg.Device.DataDir = dir
	cfg.Device.Key = "file:" + filepath.Join(dir, "device.key")
	cfg.Store.Path = filepath.Join(dir, "outbox.db")
	cfg.Status = config.Status{Socket: filepath.Join(dir, "status.sock")}
	return cfg
}
