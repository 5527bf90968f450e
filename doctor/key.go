package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/edge-agent/edge-agent/attest/atecc608"
	"github.com/edge-agent/edge-agent/attest/keys"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/status"
)

// signProbes is how many signatures doctor times on a hardware key.
const signProbes = 5

// checkHardwareKey opens a tpm: or ecc608: key with the daemon down and
// times a few signatures: a TPM signs in ~200 ms, an ATECC608 in ~50 ms;
// seconds mean a struggling chip or bus.
func checkHardwareKey(uri string) Check {
	return Check{"device key", func(context.Context) (Level, string, string) {
		s, err := keys.Open(uri)
		if keys.IsNotFound(err) {
			return Fail, oneLine(err), "create it: `edge-agent keys init` (the key is made inside the " + keys.Backend(uri) + " and never leaves it)"
		}
		if err != nil {
			return Fail, oneLine(err), "check that the device exists and the daemon's user may open it (tss group for /dev/tpmrm0, i2c group for /dev/i2c-N)"
		}
		defer keys.Close(s)
		msg := fmt.Sprintf("device id %s (backend %s, %s, held by %s, not exportable)", s.DeviceID(), keys.Backend(uri), s.Algorithm(), keys.Describe(s))
		if e, ok := s.(*atecc608.Signer); ok {
			in, err := e.Dev().Info()
			if err != nil {
				return Fail, msg + "; reading its lock state failed: " + oneLine(err), "check the I²C wiring and address"
			}
			msg += fmt.Sprintf("; %s, config zone %s, data zone %s, slot %s", in.Model(), locked(in.ConfigLocked), locked(in.DataLocked), locked(in.SlotLocked))
		}
		p50, err := keys.SignLatency(s, signProbes)
		if err != nil {
			return Fail, msg + "; signing failed: " + oneLine(err), "the key is there but does not sign: `dmesg` for TPM or I²C errors"
		}
		msg += fmt.Sprintf("; one hardware signature p50 %s (of %d)", p50.Round(10*time.Microsecond), signProbes)
		if p50 > 2*time.Second {
			return Warn, msg, "the key signs very slowly; the session key rotation (device.session_rotation) keeps records flowing, but check the chip"
		}
		return OK, msg, ""
	}}
}

func locked(b bool) string {
	if b {
		return "locked"
	}
	return "unlocked"
}

// checkKeyOnline leaves a hardware key to the daemon (a second user of an
// I²C chip could break its Nonce–Sign sequence) and reads the daemon's view.
func (h *Host) checkKeyOnline(uri string, svc *account, doc *status.Doc) Check {
	k := doc.Identity.Key
	if k == nil || !k.Hardware {
		return h.checkKey(uri, svc)
	}
	return Check{"device key", func(context.Context) (Level, string, string) {
		msg := fmt.Sprintf("device id %s (backend %s, %s, held by %s, not exportable)", doc.Identity.DeviceID, k.Backend, k.Algorithm, k.Where)
		if k.SessionBindings > 0 {
			msg += fmt.Sprintf("; %d session bindings since start, the last hardware signature took %.1f ms; session valid until %s",
				k.SessionBindings, k.LastHardwareSign, k.SessionValidUntil.Format(time.RFC3339))
		}
		if k.RotationError != "" {
			return Fail, msg + "; the last rotation failed: " + k.RotationError,
				"the daemon signs with the current session key until it expires, then stops: check the TPM or chip (`dmesg`)"
		}
		return OK, msg, ""
	}}
}

// checkCert reports the manufacturer certificate: subject, issuer, expiry,
// and that it is for this device's key.
func checkCert(cfg *config.Config, now func() time.Time) Check {
	return Check{"manufacturer certificate", func(context.Context) (Level, string, string) {
		path := cfg.CertPath()
		c, _, err := keys.ReadCert(path)
		if errors.Is(err, fs.ErrNotExist) {
			return OK, "none installed at " + path + " (collectors that require genuine devices will refuse this one)",
				"if the manufacturer issues certificates: `edge-agent keys csr`, have the factory CA sign it, `edge-agent keys install-cert FILE`"
		}
		if err != nil {
			return Fail, oneLine(err), "install the certificate again with `edge-agent keys install-cert FILE`"
		}
		msg := fmt.Sprintf("subject %q, issuer %q, expires %s", c.Subject.String(), c.Issuer.String(), c.NotAfter.UTC().Format("2006-01-02"))
		if !keys.Hardware(cfg.Device.Key) {
			if s, err := keys.Open(cfg.Device.Key); err == nil {
				if err := keys.CheckCert(s, c); err != nil {
					return Fail, msg + ": " + oneLine(err), "install the certificate issued for this key"
				}
			}
		}
		switch left := c.NotAfter.Sub(now()); {
		case left <= 0:
			return Fail, msg + " (expired)", "ask the manufacturer for a new certificate: `edge-agent keys csr`"
		case left < 30*24*time.Hour:
			return Warn, msg + " (expires soon)", "ask the manufacturer for a new certificate: `edge-agent keys csr`"
		}
		return OK, msg, ""
	}}
}
