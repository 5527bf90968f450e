package pgstore_test

import (
	"context"
	"crypto/rand"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/attesttest"
	"github.com/edge-agent/edge-agent/collect"
)

// TestManufacturerIdentityFromStore: `edge-collector status` judges devices
// from the agent.cert records PostgreSQL holds (collect.Identify over the
// store's Export): a certificate for the device key from the trusted CA is
// genuine, one for another key is not, no agent.cert is no certificate.
func TestManufacturerIdentityFromStore(t *testing.T) {
	dir := t.TempDir()
	ca := attesttest.NewCA(t, "Factory CA")
	issue := func(s attest.Signer) []byte { return ca.Issue(t, s, "board") }
	var devs [3]attest.Signer
	for i := range devs {
		devs[i], _ = attest.CreateKey("file:"+filepath.Join(dir, string(rune('a'+i))), rand.Reader)
	}
	var raws [][]byte
	for i, s := range devs {
		var prev [32]byte
		obs := []any{attest.Boot{Version: "t", Reason: attest.BootNewChain}}
		switch i {
		case 0:
			obs = append(obs, attest.Cert{DER: issue(s)})
		case 1:
			obs = append(obs, attest.Cert{DER: issue(devs[0])})
		}
		for j, o := range obs {
			kind := attest.KindBoot
			if j == 1 {
				kind = attest.KindCert
			}
			c := attest.Claims{Chain: [16]byte{3}, Seq: uint64(j + 1), Prev: prev, Time: time.Now().UnixNano(), Kind: kind, Source: "agent", Obs: o}
			p, err := attest.EncodePayload(&c)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := attest.SignPayload(s, p)
			if err != nil {
				t.Fatal(err)
			}
			prev = attest.PayloadHash(p)
			raws = append(raws, raw)
		}
	}
	ctx := context.Background()
	st := open(t, database(t))
	if _, err := st.Commit(ctx, decode(t, raws...), time.Now()); err != nil {
		t.Fatal(err)
	}
	sum, err := st.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := collect.DefaultConfig()
	cfg.Admission.TrustedManufacturers = []string{ca.PEMFile(t)}
	if err := collect.Identify(&cfg, sum, func(w io.Writer) (int, error) { return st.Export(ctx, w) }); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{devs[0].DeviceID(): collect.IdentityGenuine, devs[1].DeviceID(): collect.IdentityNotGenuine,
		devs[2].DeviceID(): collect.IdentityNoCert}
	if len(sum) != 3 {
		t.Fatalf("%d devices, want 3", len(sum))
	}
	for _, d := range sum {
		if d.Identity == nil || d.Identity.Status != want[d.Device] {
			t.Errorf("%s: %+v, want %q", d.Device, d.Identity, want[d.Device])
		}
	}
}
