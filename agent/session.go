package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/keys"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/status"
)

// A hardware key binds an in-memory session key at start and then every
// device.session_rotation; records are signed by the session key. A binding
// is valid for two rotations, so one failed rotation (a TPM that went away)
// does not stop signing: the agent says so, retries, and if the key is still
// gone when the binding expires, signing stops with ErrSessionExpired, which
// stops the daemon with that message.

const sessionSkew = time.Minute // nbf this far back: records stamped just before a rotation stay covered

func (a *Agent) rotation() time.Duration { return a.o.Config.Device.SessionRotation.Duration }

// rotate binds a new session key with the hardware key.
func (a *Agent) rotate() error {
	now := a.o.Now()
	boot := a.pipeline.BootID()
	t0 := time.Now()
	s, err := a.session.Rotate(a.o.Rand, attest.BindingClaims{
		Chain: a.store.Head().Chain, Boot: boot[:],
		NotBefore: now.Add(-sessionSkew), NotAfter: now.Add(2 * a.rotation()),
	})
	if err != nil {
		return fmt.Errorf("agent: bind a session key with the device key: %w", err)
	}
	a.log.Info("bound a new session key", "session_key", fmt.Sprintf("%x", s.Public()[:8]),
		"valid_until", s.Claims().NotAfter.UTC().Format(time.RFC3339), "hardware_sign", time.Since(t0).Round(time.Microsecond))
	a.sessionRotations.Add(1)
	a.lastHWSign.Store(int64(time.Since(t0)))
	return nil
}

// keyStatus is the key section of the status document.
func (a *Agent) keyStatus() *status.Key {
	uri := a.o.Config.Device.Key
	k := &status.Key{Backend: keys.Backend(uri), Algorithm: a.device.Algorithm().String(), Hardware: keys.Hardware(uri),
		Where: keys.Describe(a.device)}
	if a.session != nil {
		k.SessionBindings = a.sessionRotations.Load()
		k.LastHardwareSign = float64(a.lastHWSign.Load()) / 1e6
		if cur := a.session.Current(); cur != nil {
			k.SessionValidUntil = cur.Claims().NotAfter.UTC()
		}
		a.mu.Lock()
		k.RotationError = a.failures["device key"]
		a.mu.Unlock()
	}
	if a.cert != nil {
		k.CertSubject, k.CertIssuer, k.CertExpires = a.cert.Subject.String(), a.cert.Issuer.String(), a.cert.NotAfter.UTC()
	}
	return k
}

// runSessions rotates the session key until ctx is done.
func (a *Agent) runSessions(ctx context.Context) {
	every := a.rotation()
	retry := min(every/4, time.Minute)
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := a.rotate()
		a.mu.Lock()
		if err != nil {
			a.failures["device key"] = err.Error()
		} else {
			delete(a.failures, "device key")
		}
		a.mu.Unlock()
		if err == nil {
			t.Reset(every)
			continue
		}
		until := "now"
		if cur := a.session.Current(); cur != nil {
			until = cur.Claims().NotAfter.UTC().Format(time.RFC3339)
		}
		a.log.Error("the hardware key did not sign a new session binding; records are still signed with the current session key, whose binding expires "+until+"; signing stops then unless the key comes back",
			"err", err, "retry_in", retry)
		t.Reset(retry)
	}
}

// loadCert reads the manufacturer certificate, if installed, and checks it
// is for the device key. A certificate for another key is an error: it
// would make the device claim an identity it does not have.
func (a *Agent) loadCert(cfg *config.Config, device attest.Signer) ([]byte, error) {
	c, der, err := keys.ReadCert(cfg.CertPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent: manufacturer certificate: %w", err)
	}
	if err := keys.CheckCert(device, c); err != nil {
		return nil, fmt.Errorf("agent: manufacturer certificate %s: %w (install the right one with \"edge-agent keys install-cert\")", cfg.CertPath(), err)
	}
	a.cert = c
	return der, nil
}

// Cert is the manufacturer certificate (nil when none is installed).
func (a *Agent) Cert() *x509.Certificate { return a.cert }

// Device is the long-term device key.
func (a *Agent) Device() attest.Signer { return a.device }

// Sessions is the session signer (nil unless a hardware key uses them).
func (a *Agent) Sessions() *attest.SessionSigner { return a.session }
