package collect

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/edge-agent/edge-agent/attest"
)

// Manufacturer certificates (#13). A device with one installed sends it in
// an agent.cert record after each agent.boot. With
// admission.trusted_manufacturers the collector checks it against those
// CAs and against the key that signed the record, and marks the device
// genuine or not; with admission.refuse_untrusted the Trust is the
// admission Voucher, so only genuine devices' records are stored (their
// agent.boot and agent.cert always are: that is how a device proves
// itself). Nothing new is stored: the verdicts are recomputed at start,
// and by `collect status`, from the agent.cert records the store holds.

// Identity statuses.
const (
	IdentityGenuine    = "genuine"        // a trusted manufacturer certified this device key
	IdentityNotGenuine = "not genuine"    // it sent a certificate that does not check out
	IdentityNoCert     = "no certificate" // it has not sent one (yet)
)

// Identity is what `collect status` and the export say of a device.
type Identity struct {
	Status  string    `json:"status"`
	Reason  string    `json:"reason,omitempty"`
	Subject string    `json:"subject,omitempty"`
	Issuer  string    `json:"issuer,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
	at      int64     // the agent.cert record's time: the newest decides
}

// Trust judges devices by their manufacturer certificates. Safe for
// concurrent use.
type Trust struct {
	roots  *x509.CertPool
	refuse bool
	mu     sync.Mutex
	ids    map[string]Identity // by device id
}

var _ Voucher = (*Trust)(nil)

// LoadTrust reads admission.trusted_manufacturers (PEM files, one or more
// certificates each); nil when none are configured.
func LoadTrust(a Admission) (*Trust, error) {
	if len(a.TrustedManufacturers) == 0 {
		return nil, nil
	}
	pool := x509.NewCertPool()
	for _, f := range a.TrustedManufacturers {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("%w: admission.trusted_manufacturers: %w", ErrConfig, err)
		}
		n := 0
		for blk, rest := pem.Decode(b); blk != nil; blk, rest = pem.Decode(rest) {
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: admission.trusted_manufacturers: %s: %w", ErrConfig, f, err)
			}
			pool.AddCert(c)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: admission.trusted_manufacturers: %s holds no PEM certificate (want the manufacturer's CA certificate)", ErrConfig, f)
		}
	}
	return &Trust{roots: pool, refuse: a.RefuseUntrusted, ids: map[string]Identity{}}, nil
}

// Observe takes in an agent.cert record (others are ignored); the newest
// certificate of a device decides (a re-provisioned device).
func (t *Trust) Observe(rec *attest.Record) {
	if rec.Claims.Kind != attest.KindCert {
		return
	}
	id := t.check(rec)
	t.mu.Lock()
	if old, ok := t.ids[rec.DeviceID]; !ok || old.at <= id.at {
		t.ids[rec.DeviceID] = id
	}
	t.mu.Unlock()
}

// check judges an agent.cert record: the certificate must certify the key
// that signed the record and chain to a trusted manufacturer at the
// record's time (records arrive late).
func (t *Trust) check(rec *attest.Record) Identity {
	id := Identity{Status: IdentityNotGenuine, at: rec.Claims.Time}
	raw, ok := rec.Claims.Obs.(cbor.RawMessage)
	var obs attest.Cert
	if !ok || cbor.Unmarshal(raw, &obs) != nil || len(obs.DER) == 0 {
		id.Reason = "agent.cert record without a certificate"
		return id
	}
	c, err := x509.ParseCertificate(obs.DER)
	if err != nil {
		id.Reason = "certificate does not parse: " + err.Error()
		return id
	}
	id.Subject, id.Issuer, id.Expires = c.Subject.String(), c.Issuer.String(), c.NotAfter.UTC()
	pub, err := attest.PublicKey(rec.Alg, rec.KeyID)
	if err != nil {
		id.Reason = err.Error()
		return id
	}
	if eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(c.PublicKey) {
		id.Reason = "certificate is for another key"
		return id
	}
	_, err = c.Verify(x509.VerifyOptions{Roots: t.roots, CurrentTime: time.Unix(0, rec.Claims.Time),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		id.Reason = "not from a trusted manufacturer: " + err.Error()
		return id
	}
	id.Status = IdentityGenuine
	return id
}

// Vouches admits a device's agent.boot and agent.cert records, and the
// rest only when the device is genuine.
func (t *Trust) Vouches(rec *attest.Record) bool {
	if k := rec.Claims.Kind; k == attest.KindBoot || k == attest.KindCert {
		return true
	}
	return t.Of(rec.DeviceID).Status == IdentityGenuine
}

// Of is the identity of one device.
func (t *Trust) Of(dev string) Identity {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id, ok := t.ids[dev]; ok {
		return id
	}
	return Identity{Status: IdentityNoCert}
}

// Scan observes every agent.cert record of an export (a Store's Export,
// ExportDB): how verdicts survive a restart without a table of their own.
func (t *Trust) Scan(export func(io.Writer) (int, error)) error {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := export(pw)
		pw.CloseWithError(err)
	}()
	err := attest.ReadSequence(pr, func(raw []byte) error {
		if r, err := attest.Decode(raw); err == nil && r.Claims.Kind == attest.KindCert {
			t.Observe(r)
		}
		return nil
	})
	pr.CloseWithError(io.ErrClosedPipe) // stop the writer if reading failed
	<-done
	if err != nil {
		return fmt.Errorf("collect: read the stored agent.cert records: %w", err)
	}
	return nil
}

// Annotate sets each device's Identity in sum.
func (t *Trust) Annotate(sum []DeviceSummary) {
	for i := range sum {
		id := t.Of(sum[i].Device)
		sum[i].Identity = &id
	}
}

// Identify annotates sum (read from a store by `collect status` or
// `edge-collector status`) with each device's identity, from the store's
// agent.cert records; nothing without admission.trusted_manufacturers.
func Identify(cfg *Config, sum []DeviceSummary, export func(io.Writer) (int, error)) error {
	t, err := LoadTrust(cfg.Admission)
	if t == nil || err != nil {
		return err
	}
	if err := t.Scan(export); err != nil {
		return err
	}
	t.Annotate(sum)
	return nil
}

// printIdentities is the identity table of PrintSummary.
func printIdentities(w io.Writer, sum []DeviceSummary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tIDENTITY\tCERTIFICATE\tEXPIRES")
	for _, d := range sum {
		if d.Identity == nil {
			continue
		}
		id, exp := d.Identity.Status, ""
		if d.Identity.Reason != "" {
			id += ": " + d.Identity.Reason
		}
		if !d.Identity.Expires.IsZero() {
			exp = d.Identity.Expires.Format(time.DateOnly)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Device, id, d.Identity.Subject, exp)
	}
	tw.Flush()
	fmt.Fprintln(w)
}

// WriteIdentities writes, next to an export FILE, FILE.identity.json: each
// device of sum (annotated by Identify) and its identity. It returns a line
// for people counting each status, or "" when sum has no identities.
func WriteIdentities(out string, sum []DeviceSummary) (string, error) {
	type entry struct {
		Device   string   `json:"device"`
		Identity Identity `json:"identity"`
	}
	ids := []entry{}
	n := map[string]int{}
	for _, d := range sum {
		if d.Identity != nil {
			ids = append(ids, entry{d.Device, *d.Identity})
			n[d.Identity.Status]++
		}
	}
	if len(ids) == 0 {
		return "", nil
	}
	b, err := json.MarshalIndent(ids, "", "  ")
	if err == nil {
		err = os.WriteFile(out+".identity.json.tmp", append(b, '\n'), 0o640)
	}
	if err == nil {
		err = os.Rename(out+".identity.json.tmp", out+".identity.json")
	}
	if err != nil {
		return "", fmt.Errorf("collect: export identities: %w", err)
	}
	return fmt.Sprintf("devices: %d %s, %d %s, %d with %s (per device in %s.identity.json)",
		n[IdentityGenuine], IdentityGenuine, n[IdentityNotGenuine], IdentityNotGenuine,
		n[IdentityNoCert], IdentityNoCert, out), nil
}
