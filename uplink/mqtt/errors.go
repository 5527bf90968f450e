package mqtt

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

var (
	// ErrInvalidConfig is returned by New and NewSubscriber when Opts are
	// missing something or contradict themselves; the message names the field.
	ErrInvalidConfig = errors.New("invalid mqtt configuration")
	// ErrTimeout is returned (wrapped) when the broker does not answer a
	// CONNECT, PUBLISH or SUBSCRIBE in time; the connection is then dropped
	// and retried.
	ErrTimeout = errors.New("broker did not answer in time")
	// ErrConnectionLost is returned (wrapped) when an established connection
	// breaks; everything unacknowledged is sent again on the next one.
	ErrConnectionLost = errors.New("connection to broker lost")
	// ErrSubscribeRefused is returned (wrapped) when the broker answers a
	// SUBSCRIBE with failure (0x80), usually an ACL that does not allow it.
	ErrSubscribeRefused = errors.New("broker refused the subscription")
	// ErrNotConnected is returned by Subscriber.Publish between connections.
	ErrNotConnected = errors.New("not connected to a broker")
)

// explain turns a connection error into the sentence a field tech needs:
// what went wrong, in words, and which setting to look at.
func (c *config) explain(err error) string {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		dnsErr    *net.DNSError
		netErr    net.Error
	)
	msg := err.Error()
	switch {
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword),
		errors.Is(err, packets.ErrorRefusedNotAuthorised) && c.Username != "":
		return "broker rejected the username/password"
	case errors.Is(err, packets.ErrorRefusedNotAuthorised):
		return "broker refused the connection: not authorised — it probably needs a username/password"
	case errors.Is(err, packets.ErrorRefusedIDRejected):
		return fmt.Sprintf("broker rejected the client id %q — set client_id", c.ClientID)
	case errors.Is(err, packets.ErrorRefusedServerUnavailable):
		return "broker answered that it is unavailable"
	case errors.Is(err, packets.ErrorRefusedBadProtocolVersion):
		return "broker does not accept MQTT 3.1.1"
	case errors.As(err, &unknownCA):
		return "TLS: broker certificate signed by an unknown authority — check ca_file"
	case errors.As(err, &hostname):
		return fmt.Sprintf("TLS: broker certificate is not valid for %s — check the server URL", hostname.Host)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "TLS: broker certificate expired or not yet valid — check the device clock and the broker's certificate"
	case errors.As(err, &invalid):
		return "TLS: broker certificate rejected: " + invalid.Error()
	case strings.Contains(msg, "remote error: tls:"):
		// The broker sent a TLS alert: with TLS 1.3 that is how a rejected
		// client certificate shows up, after our side of the handshake.
		if c.tls == nil || len(c.tls.Certificates) == 0 {
			return "TLS: broker requires a client certificate — set cert_file and key_file"
		}
		alert := msg[strings.LastIndex(msg, "remote error: tls:")+len("remote error: "):]
		return fmt.Sprintf("TLS: broker rejected the client certificate (%s; it expires %s) — check cert_file/key_file and that the broker trusts their CA",
			alert, c.certExpiry.UTC().Format(time.DateOnly))
	case errors.Is(err, syscall.ECONNREFUSED):
		return "broker unreachable: connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "broker unreachable: no route to host — check the network"
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("broker unreachable: cannot resolve %s — check the server URL and DNS", dnsErr.Name)
	case errors.Is(err, ErrTimeout), errors.As(err, &netErr) && netErr.Timeout():
		return "broker unreachable: connection timed out"
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		if c.tls != nil && len(c.tls.Certificates) > 0 {
			// A broker that refuses the certificate may close before its
			// alert is read, so the alert above is not always seen.
			return fmt.Sprintf("TLS: broker rejected the client certificate, it seems (it closed the connection during connect; the certificate expires %s) — check cert_file/key_file and that the broker trusts their CA",
				c.certExpiry.UTC().Format(time.DateOnly))
		}
		return "broker closed the connection during connect"
	}
	return msg
}
