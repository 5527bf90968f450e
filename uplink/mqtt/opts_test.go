package mqtt

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/edge-agent/edge-agent/uplink/mqtt/mqtttest"
)

func TestNewValidates(t *testing.T) {
	pki := mqtttest.NewPKI(t, "ca")
	cert, key := pki.Client(t, "dev1", time.Now().Add(time.Hour))
	otherCert, _ := pki.Client(t, "other", time.Now().Add(time.Hour))
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		edit    func(*Opts)
		wantErr string // substring; "" means valid
		invalid bool   // errors.Is(err, ErrInvalidConfig)
	}{
		{name: "valid tcp", edit: func(*Opts) {}},
		{name: "valid mutual TLS", edit: func(o *Opts) {
			o.Servers = []string{"mqtts://127.0.0.1"}
			o.CAFile, o.CertFile, o.KeyFile = pki.CAFile, cert, key
		}},
		{name: "no servers", edit: func(o *Opts) { o.Servers = nil }, wantErr: "no servers", invalid: true},
		{name: "bad scheme", edit: func(o *Opts) { o.Servers = []string{"http://x:1"} }, wantErr: `scheme "http" not supported`, invalid: true},
		{name: "no host", edit: func(o *Opts) { o.Servers = []string{"tcp://:1883"} }, wantErr: "has no host", invalid: true},
		{name: "credentials in URL", edit: func(o *Opts) { o.Servers = []string{"tcp://u:p@x"} }, wantErr: "carries credentials", invalid: true},
		{name: "no device", edit: func(o *Opts) { o.DeviceID = "" }, wantErr: "device id is empty", invalid: true},
		{name: "wildcard device", edit: func(o *Opts) { o.DeviceID = "a+b" }, wantErr: "wildcard", invalid: true},
		{name: "slash device", edit: func(o *Opts) { o.DeviceID = "a/b" }, wantErr: "contains '/'", invalid: true},
		{name: "prefix trailing slash", edit: func(o *Opts) { o.TopicPrefix = "net/" }, wantErr: "empty topic level", invalid: true},
		{name: "password alone", edit: func(o *Opts) { o.Password = "x" }, wantErr: "without a username", invalid: true},
		{name: "window zero", edit: func(o *Opts) { o.Window = 0 }, wantErr: "window 0", invalid: true},
		{name: "window too big", edit: func(o *Opts) { o.Window = 70000 }, wantErr: "window 70000", invalid: true},
		{name: "backoff inverted", edit: func(o *Opts) { o.BackoffMax = o.BackoffMin / 2 }, wantErr: "backoff", invalid: true},
		{name: "cert without key", edit: func(o *Opts) {
			o.Servers = []string{"ssl://127.0.0.1:8883"}
			o.CertFile = cert
		}, wantErr: "go together", invalid: true},
		{name: "TLS files on tcp only", edit: func(o *Opts) { o.CAFile = pki.CAFile }, wantErr: "no server uses ssl", invalid: true},
		{name: "CA file missing", edit: func(o *Opts) {
			o.Servers = []string{"ssl://127.0.0.1"}
			o.CAFile = filepath.Join(t.TempDir(), "nope.pem")
		}, wantErr: "read ca_file"},
		{name: "CA file not PEM", edit: func(o *Opts) {
			o.Servers = []string{"ssl://127.0.0.1"}
			o.CAFile = notPEM
		}, wantErr: "holds no PEM certificate", invalid: true},
		{name: "key does not match cert", edit: func(o *Opts) {
			o.Servers = []string{"ssl://127.0.0.1"}
			o.CertFile, o.KeyFile = otherCert, key
		}, wantErr: "load client certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOpts(t, "tcp://127.0.0.1:1883")
			tt.edit(&o)
			u, err := New(o)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if u.Name() != "mqtt" {
					t.Errorf("Name() = %q", u.Name())
				}
				return
			}
			if err == nil {
				t.Fatalf("New succeeded, want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "mqtt: ") {
				t.Errorf("New error = %q, want it to start with \"mqtt: \" and contain %q", err, tt.wantErr)
			}
			if got := errors.Is(err, ErrInvalidConfig); got != tt.invalid {
				t.Errorf("errors.Is(err, ErrInvalidConfig) = %v, want %v", got, tt.invalid)
			}
		})
	}
}

func TestServerDefaults(t *testing.T) {
	tests := []struct{ in, want string }{
		{"tcp://broker", "tcp://broker:1883"},
		{"mqtt://broker", "mqtt://broker:1883"},
		{"ssl://broker", "ssl://broker:8883"},
		{"mqtts://[::1]", "mqtts://[::1]:8883"},
		{"tcp://broker:1884", "tcp://broker:1884"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, _, err := parseServer(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if u.String() != tt.want {
				t.Errorf("parseServer(%q) = %q, want %q", tt.in, u, tt.want)
			}
		})
	}
}

func TestClientCertExpiryInStatus(t *testing.T) {
	pki := mqtttest.NewPKI(t, "ca")
	expiry := time.Now().Add(40 * 24 * time.Hour).Truncate(time.Second)
	cert, key := pki.Client(t, "dev1", expiry)
	o := testOpts(t, "ssl://127.0.0.1:8883")
	o.CAFile, o.CertFile, o.KeyFile = pki.CAFile, cert, key
	u := mustNew(t, o)
	if got := u.Status().ClientCertExpiry; !got.Equal(expiry) {
		t.Errorf("Status().ClientCertExpiry = %v, want %v", got, expiry)
	}
}

// waitAfter is the reconnect wait after n consecutive failures.
func waitAfter(c *config, n int) time.Duration {
	b := c.newBackoff()
	var d time.Duration
	for range n {
		d = b.Next()
	}
	return d
}

func TestBackoff(t *testing.T) {
	o := testOpts(t, "tcp://127.0.0.1:1")
	o.BackoffMin, o.BackoffMax = time.Second, 60*time.Second
	c, err := load(o, true)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		failures int
		base     time.Duration // before jitter
	}{
		{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {6, 32 * time.Second},
		{7, 60 * time.Second}, {50, 60 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.failures), func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 200 {
				d := waitAfter(c, tt.failures)
				if d < tt.base/2 || d > tt.base {
					t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tt.failures, d, tt.base/2, tt.base)
				}
				seen[d] = true
			}
			if len(seen) < 50 {
				t.Errorf("backoff(%d): only %d distinct values in 200 draws: jitter missing", tt.failures, len(seen))
			}
		})
	}
	// The same seed gives the same waits: randomness is injected.
	o.Rand = rand.New(rand.NewPCG(7, 7))
	c1, _ := load(o, true)
	o.Rand = rand.New(rand.NewPCG(7, 7))
	c2, _ := load(o, true)
	for i := range 10 {
		if a, b := waitAfter(c1, i+1), waitAfter(c2, i+1); a != b {
			t.Fatalf("same seed, attempt %d: %v != %v", i+1, a, b)
		}
	}
}

func TestExplain(t *testing.T) {
	pki := mqtttest.NewPKI(t, "ca")
	cert, key := pki.Client(t, "dev1", time.Date(2031, 5, 6, 0, 0, 0, 0, time.UTC))
	withCert := testOpts(t, "ssl://127.0.0.1:8883")
	withCert.CertFile, withCert.KeyFile = cert, key
	withCert.Username = "dev1"
	cc, err := load(withCert, true)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := load(testOpts(t, "tcp://127.0.0.1:1883"), true)
	if err != nil {
		t.Fatal(err)
	}
	netErr := func(e error) error {
		return fmt.Errorf("%w : %w", packets.ErrorNetworkError, &net.OpError{Op: "dial", Net: "tcp", Err: e})
	}
	tests := []struct {
		name string
		c    *config
		err  error
		want string
	}{
		{"bad password", plain, packets.ErrorRefusedBadUsernameOrPassword, "broker rejected the username/password"},
		{"not authorised with username", cc, packets.ErrorRefusedNotAuthorised, "broker rejected the username/password"},
		{"not authorised anonymous", plain, packets.ErrorRefusedNotAuthorised, "not authorised — it probably needs a username/password"},
		{"refused", plain, netErr(&os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}), "broker unreachable: connection refused"},
		{"dns", plain, netErr(&net.DNSError{Name: "broker.example", Err: "no such host"}), "broker unreachable: cannot resolve broker.example"},
		{"unknown CA", cc, netErr(x509.UnknownAuthorityError{}), "TLS: broker certificate signed by an unknown authority — check ca_file"},
		{"hostname", cc, netErr(x509.HostnameError{Host: "10.0.0.1", Certificate: &x509.Certificate{}}), "not valid for 10.0.0.1"},
		{"expired", cc, netErr(x509.CertificateInvalidError{Reason: x509.Expired}), "check the device clock"},
		{"client cert alert", cc, netErr(errors.New("remote error: tls: unknown certificate authority")), "TLS: broker rejected the client certificate (tls: unknown certificate authority; it expires 2031-05-06)"},
		{"closed after handshake", cc, netErr(syscall.ECONNRESET), "TLS: broker rejected the client certificate, it seems (it closed the connection during connect; the certificate expires 2031-05-06)"},
		{"closed without TLS", plain, netErr(syscall.ECONNRESET), "broker closed the connection during connect"},
		{"alert without cert", plain, netErr(errors.New("remote error: tls: certificate required")), "set cert_file and key_file"},
		{"timeout", plain, fmt.Errorf("x: %w", ErrTimeout), "connection timed out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.explain(tt.err); !strings.Contains(got, tt.want) {
				t.Errorf("explain(%v) = %q, want it to contain %q", tt.err, got, tt.want)
			}
		})
	}
}

// A password in a server URL must never be echoed, whatever else is wrong with the URL.
func TestNewNeverEchoesAPassword(t *testing.T) {
	const secret = "s3cr3t-pw"
	for _, s := range []string{
		"tcp://u:" + secret + "@x:1883",
		"http://u:" + secret + "@x:1",
		"tcp://u:" + secret + "@:1883",
		"tcp://u:" + secret + "@x:1883/%zz",
		"tcp://u:" + secret + "@[::1",
	} {
		o := testOpts(t, s)
		_, err := New(o)
		if err == nil {
			t.Fatalf("New accepted %q", s)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the password: %v", err)
		}
	}
}
