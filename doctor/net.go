package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// certWarn is how long before expiry a certificate becomes a warning: long
// enough to get a new one provisioned over a month-long check-in cycle.
const certWarn = 30 * 24 * time.Hour

// tlsAlertWait is how long after the handshake doctor listens for the
// server's verdict on the client certificate: with TLS 1.3 the client's
// handshake completes before the server has checked it, and a rejection
// arrives as an alert on the first read.
const tlsAlertWait = 500 * time.Millisecond

func (h *Host) checkEndpoint(e Endpoint) Check {
	name := e.Uplink + " " + e.Addr
	return Check{name, func(ctx context.Context) (Level, string, string) {
		// A certificate that expired locally is the plainest answer and
		// needs no network.
		var clientCert *x509.Certificate
		if e.TLS && e.CertFile != "" {
			c, err := readCert(e.CertFile)
			if err != nil {
				return Fail, "client certificate: " + err.Error(), "check cert_file"
			}
			if now := h.Now(); now.After(c.NotAfter) {
				return Fail, fmt.Sprintf("the broker rejects the client certificate: it expired on %s (%s)", c.NotAfter.UTC().Format(time.DateOnly), e.CertFile),
					"install a renewed client certificate at " + e.CertFile + " (and its key), then `systemctl restart edge-agent`"
			}
			clientCert = c
		}
		ctx, cancel := context.WithTimeout(ctx, h.DialTimeout)
		defer cancel()
		conn, err := h.Dial(ctx, "tcp", e.Addr)
		if err != nil {
			return Fail, "unreachable: " + dialWords(err), nextUnreachable(e)
		}
		defer conn.Close()
		if !e.TLS {
			return OK, "reachable (TCP connect)", ""
		}
		cfg, err := e.tlsConfig()
		if err != nil {
			return Fail, err.Error(), "check ca_file, cert_file and key_file"
		}
		tc := tls.Client(conn, cfg)
		if d, ok := ctx.Deadline(); ok {
			tc.SetDeadline(d)
		}
		if err := tc.HandshakeContext(ctx); err != nil {
			return tlsVerdict(err, e)
		}
		// Listen briefly for a rejection of our certificate.
		tc.SetReadDeadline(time.Now().Add(tlsAlertWait))
		if _, err := tc.Read(make([]byte, 1)); err != nil && strings.Contains(err.Error(), "remote error: tls:") {
			return tlsVerdict(err, e)
		}
		server := tc.ConnectionState().PeerCertificates[0]
		msg := "reachable, TLS verified, server certificate valid until " + server.NotAfter.UTC().Format(time.DateOnly)
		if clientCert != nil {
			msg += ", client certificate until " + clientCert.NotAfter.UTC().Format(time.DateOnly)
		}
		switch now := h.Now(); {
		case clientCert != nil && clientCert.NotAfter.Sub(now) < certWarn:
			return Warn, fmt.Sprintf("the client certificate expires in %s, on %s", roughly(clientCert.NotAfter.Sub(now)), clientCert.NotAfter.UTC().Format(time.DateOnly)),
				"provision a renewed client certificate before then (" + e.CertFile + ")"
		case server.NotAfter.Sub(now) < certWarn:
			return Warn, fmt.Sprintf("the broker's certificate expires in %s, on %s", roughly(server.NotAfter.Sub(now)), server.NotAfter.UTC().Format(time.DateOnly)),
				"tell the broker's operator"
		}
		return OK, msg, ""
	}}
}

func (e Endpoint) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: e.ServerName, MinVersion: tls.VersionTLS12}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(e.Addr)
		if err != nil {
			return nil, fmt.Errorf("doctor: endpoint %q: %w", e.Addr, err)
		}
		cfg.ServerName = host
	}
	if e.CAFile != "" {
		pemData, err := os.ReadFile(e.CAFile)
		if err != nil {
			return nil, fmt.Errorf("doctor: read CA file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("doctor: CA file %s holds no PEM certificate", e.CAFile)
		}
	}
	if e.CertFile != "" || e.KeyFile != "" {
		pair, err := tls.LoadX509KeyPair(e.CertFile, e.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("doctor: load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return x509.ParseCertificate(block.Bytes)
}

func tlsVerdict(err error, e Endpoint) (Level, string, string) {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	msg := err.Error()
	switch {
	case errors.As(err, &unknownCA):
		return Fail, "TLS: the broker's certificate is signed by an unknown authority", "check ca_file (" + e.CAFile + ") against the broker's CA"
	case errors.As(err, &hostname):
		return Fail, "TLS: the broker's certificate is not valid for " + hostname.Host, "check the server URL"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return Fail, "TLS: the broker's certificate has expired (or this clock is wrong): " + invalid.Error(), "check the clock line; otherwise tell the broker's operator"
	case strings.Contains(msg, "remote error: tls:"):
		if e.CertFile == "" {
			return Fail, "TLS: the broker requires a client certificate", "set cert_file and key_file"
		}
		return Fail, "TLS: the broker rejects the client certificate (" + msg[strings.LastIndex(msg, "tls:"):] + ")",
			"check that " + e.CertFile + " is the one the network issued for this device and has not been revoked"
	}
	return Fail, "TLS handshake failed: " + msg, "check ca_file, cert_file and the server URL"
}

func dialWords(err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	case errors.As(err, &dnsErr):
		return "cannot resolve " + dnsErr.Name
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "no answer (timed out)"
	}
	return err.Error()
}

func nextUnreachable(e Endpoint) string {
	where := "[uplinks." + e.Uplink + "]"
	switch e.Uplink { // endpoints that are not uplinks: drivers' servers
	case "gpsd":
		where = "gpsd_addr of [[drivers.gnss]]"
	case "modbus":
		where = "addr of [[drivers.energy]]"
	case "concentratord":
		where = "event_url of [[drivers.lora]]"
	case "lora broker":
		where = "mqtt_server of [[drivers.lora]]"
	}
	return fmt.Sprintf("check the network (`ping %s`) and the server address in %s; is the service running there?", hostOf(e.Addr), where)
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
