// Package pipelinetest checks what the signing stage left in an outbox, for
// the tests of the pipeline and of the daemon around it: every record is
// audited as a collector would audit it. It is safe for concurrent use as
// far as the store is.
package pipelinetest

import (
	"fmt"
	"testing"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/store"
)

// AuditStore verifies every record in st as a collector would, and that each
// sits at its own seq; it fails tb on the first record that does not.
func AuditStore(tb testing.TB, st *store.Store) (attest.Report, []*attest.Record) {
	tb.Helper()
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
		tb.Fatal(err)
	}
	return audit.Report(), recs
}
