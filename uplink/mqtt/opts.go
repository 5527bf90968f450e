package mqtt

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/edge-agent/edge-agent/backoff"
)

// Opts configures an Uplink or a Subscriber. Start from DefaultOpts.
type Opts struct {
	// Servers are broker URLs tried in turn: tcp:// or mqtt:// (port 1883 when
	// omitted), ssl://, tls:// or mqtts:// (port 8883 when omitted).
	Servers []string
	// CAFile is a PEM bundle the broker certificate must chain to; empty
	// means the system roots.
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and key for mutual
	// TLS; both or neither.
	CertFile, KeyFile string
	// Username and Password authenticate to the broker; a password needs a
	// username (MQTT 3.1.1 §3.1.2.9).
	Username, Password string
	// ClientID defaults to DeviceID for the Uplink. The Subscriber needs a
	// fixed one: its persistent session at the broker is keyed by it.
	ClientID string
	// DeviceID names the device in topics; required for the Uplink.
	DeviceID string
	// KeepAlive is the MQTT keepalive; a dead connection is noticed within
	// about 1.5 times this.
	KeepAlive time.Duration
	// TopicPrefix is the first topic level(s), without a trailing slash.
	TopicPrefix string
	// SingleTopic publishes every record on {prefix}/{device}/att, the
	// layout before per-kind topics, for subscribers not yet updated. By
	// default a record goes to {prefix}/{device}/att/{kind}.
	SingleTopic bool
	// Window is how many records may be in flight (published, not yet
	// PUBACKed). For the Subscriber it is unused.
	Window int
	// ConnectTimeout bounds one connection attempt (TCP, TLS and CONNACK).
	ConnectTimeout time.Duration
	// DupAfter is how long a PUBLISH waits for its PUBACK before it is
	// sent again with DUP on the same connection; 0 means 5s.
	DupAfter time.Duration
	// BackoffMin and BackoffMax bound the wait between failed connection
	// attempts; it doubles from BackoffMin and is jittered by Rand.
	BackoffMin, BackoffMax time.Duration
	// Version is the agent version reported in the status document.
	Version string
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
	// Rand jitters the backoff; nil seeds one from crypto/rand. It is used
	// under a lock, so one Rand may be shared.
	Rand *mrand.Rand
	// Now is the clock for status timestamps; nil means time.Now.
	Now func() time.Time

	// Collectors, when set (Uplink only), switch delivery from the broker's
	// PUBACK to end-to-end receipts: a record leaves the outbox only once
	// MinReceipts of these collectors (ids as OpenReceipt returns them) sent
	// a signed receipt for it on {prefix}/{device}/receipt after their
	// database commit, and it is published again otherwise. A PUBACK only
	// says the broker has it: shared subscriptions lose QoS 1 messages when
	// a member with a persistent session leaves (mosquitto#2662).
	Collectors  []string
	MinReceipts int // 1..len(Collectors)
	// ResendAfter is the first wait before a record without enough receipts
	// is published again; it doubles per attempt up to ResendMax.
	ResendAfter, ResendMax time.Duration
	// OpenReceipt checks a receipt's signature and decodes it; required
	// with Collectors. The daemon passes the p2p receipt format's, so a
	// collector has one key and one receipt format for both transports.
	OpenReceipt func(raw []byte) (*Receipt, error)

	// SharedGroup (Subscriber only) subscribes through an MQTT shared
	// subscription, $share/<group>/…, so the collectors of one group split
	// the devices' records between them.
	SharedGroup string
}

// Receipt is a collector's signed statement that it holds records durably,
// as OpenReceipt returns it.
type Receipt struct {
	Collector string
	Device    string
	Chains    map[[16]byte][][2]uint64 // chain id → inclusive seq ranges
}

// DefaultOpts returns the defaults: keepalive 30s, prefix "edge-agent", 64
// records in flight, 10s connect timeout, backoff from 1s to 60s.
func DefaultOpts() Opts {
	return Opts{
		KeepAlive:      30 * time.Second,
		TopicPrefix:    "edge-agent",
		Window:         64,
		ConnectTimeout: 10 * time.Second,
		BackoffMin:     time.Second,
		BackoffMax:     60 * time.Second,
		MinReceipts:    1,
		ResendAfter:    30 * time.Second,
		ResendMax:      10 * time.Minute,
	}
}

// maxWindow is the number of MQTT packet identifiers (§2.3.1): a larger
// window could not be tracked by the protocol.
const maxWindow = 65535

// config is Opts validated and loaded: URLs normalised, files read.
type config struct {
	Opts
	servers    []*url.URL
	tls        *tls.Config // nil when no server uses TLS
	certExpiry time.Time   // zero without a client certificate
	rand       *lockedRand
}

// load validates o and reads the files it names. deviceRequired is false for
// the Subscriber, which serves many devices.
func load(o Opts, deviceRequired bool) (*config, error) {
	c := &config{Opts: o}
	if len(o.Servers) == 0 {
		return nil, fmt.Errorf("mqtt: no servers configured: set at least one broker URL such as tcp://broker:1883: %w", ErrInvalidConfig)
	}
	useTLS := false
	for _, s := range o.Servers {
		u, secure, err := parseServer(s)
		if err != nil {
			return nil, err
		}
		useTLS = useTLS || secure
		c.servers = append(c.servers, u)
	}
	if err := checkTopicLevel("topic prefix", o.TopicPrefix, true); err != nil {
		return nil, err
	}
	if deviceRequired || o.DeviceID != "" {
		if err := checkTopicLevel("device id", o.DeviceID, false); err != nil {
			return nil, err
		}
	}
	if c.ClientID == "" {
		c.ClientID = o.DeviceID
	}
	if c.ClientID == "" {
		return nil, fmt.Errorf("mqtt: client id is empty: set client_id (a persistent session needs a fixed one): %w", ErrInvalidConfig)
	}
	if o.Password != "" && o.Username == "" {
		return nil, fmt.Errorf("mqtt: password set without a username: MQTT 3.1.1 needs both: %w", ErrInvalidConfig)
	}
	if o.KeepAlive < time.Second {
		return nil, fmt.Errorf("mqtt: keepalive %v is below 1s: %w", o.KeepAlive, ErrInvalidConfig)
	}
	if deviceRequired && (o.Window < 1 || o.Window > maxWindow) {
		return nil, fmt.Errorf("mqtt: window %d out of range 1..%d: %w", o.Window, maxWindow, ErrInvalidConfig)
	}
	if o.ConnectTimeout <= 0 {
		return nil, fmt.Errorf("mqtt: connect timeout %v must be positive: %w", o.ConnectTimeout, ErrInvalidConfig)
	}
	if o.BackoffMin <= 0 || o.BackoffMax < o.BackoffMin {
		return nil, fmt.Errorf("mqtt: backoff %v..%v: need 0 < min <= max: %w", o.BackoffMin, o.BackoffMax, ErrInvalidConfig)
	}
	if len(o.Collectors) > 0 {
		if o.MinReceipts < 1 || o.MinReceipts > len(o.Collectors) {
			return nil, fmt.Errorf("mqtt: min_receipts %d: want 1..%d (the number of collectors): %w", o.MinReceipts, len(o.Collectors), ErrInvalidConfig)
		}
		if o.OpenReceipt == nil {
			return nil, fmt.Errorf("mqtt: collectors set without a receipt verifier: %w", ErrInvalidConfig)
		}
		if o.ResendAfter <= 0 || o.ResendMax < o.ResendAfter {
			return nil, fmt.Errorf("mqtt: resend %v..%v: need 0 < resend_after <= resend_max: %w", o.ResendAfter, o.ResendMax, ErrInvalidConfig)
		}
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, fmt.Errorf("mqtt: cert_file and key_file go together: set both for mutual TLS or neither: %w", ErrInvalidConfig)
	}
	if (o.CAFile != "" || o.CertFile != "") && !useTLS {
		return nil, fmt.Errorf("mqtt: TLS files set but no server uses ssl:// or mqtts://: %w", ErrInvalidConfig)
	}
	if useTLS {
		t, expiry, err := loadTLS(o.CAFile, o.CertFile, o.KeyFile)
		if err != nil {
			return nil, err
		}
		c.tls, c.certExpiry = t, expiry
	}
	if c.DupAfter <= 0 {
		c.DupAfter = defaultDupAfter
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	r := o.Rand
	if r == nil {
		var seed [16]byte
		if _, err := io.ReadFull(rand.Reader, seed[:]); err != nil {
			return nil, fmt.Errorf("mqtt: seed backoff jitter: %w", err)
		}
		r = mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	c.rand = &lockedRand{r: r}
	return c, nil
}

// parseServer checks one broker URL and fills in the default port, which paho
// would otherwise not add.
func parseServer(s string) (*url.URL, bool, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse's error repeats the string, password and all: name the server by its place.
		return nil, false, fmt.Errorf("mqtt: a server is not a URL (%s): %w", redactedParseErr(err), ErrInvalidConfig)
	}
	var secure bool
	var port string
	switch u.Scheme {
	case "tcp", "mqtt":
		port = "1883"
	case "ssl", "tls", "mqtts":
		secure, port = true, "8883"
	default:
		return nil, false, fmt.Errorf("mqtt: server %q: scheme %q not supported, use tcp://, ssl:// or mqtts://: %w", u.Redacted(), u.Scheme, ErrInvalidConfig)
	}
	if u.Hostname() == "" {
		return nil, false, fmt.Errorf("mqtt: server %q has no host: %w", u.Redacted(), ErrInvalidConfig)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	if u.User != nil {
		return nil, false, fmt.Errorf("mqtt: server %q carries credentials: use username and password instead: %w", u.Redacted(), ErrInvalidConfig)
	}
	return u, secure, nil
}

// redactedParseErr is url.Parse's complaint without the URL it quotes.
func redactedParseErr(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return "unparseable"
}

// checkTopicLevel rejects names that would change the topic structure or that
// brokers refuse in a PUBLISH (wildcards, §4.7.1).
func checkTopicLevel(what, s string, slashOK bool) error {
	switch {
	case s == "":
		return fmt.Errorf("mqtt: %s is empty: %w", what, ErrInvalidConfig)
	case strings.ContainsAny(s, "+#\x00"):
		return fmt.Errorf("mqtt: %s %q contains an MQTT wildcard (+ or #): %w", what, s, ErrInvalidConfig)
	case !slashOK && strings.Contains(s, "/"):
		return fmt.Errorf("mqtt: %s %q contains '/': %w", what, s, ErrInvalidConfig)
	case strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") || strings.Contains(s, "//"):
		return fmt.Errorf("mqtt: %s %q has an empty topic level: %w", what, s, ErrInvalidConfig)
	}
	return nil
}

// loadTLS builds the client TLS configuration and returns the client
// certificate's expiry, so Status can show it before it bites.
func loadTLS(caFile, certFile, keyFile string) (*tls.Config, time.Time, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("mqtt: read ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, time.Time{}, fmt.Errorf("mqtt: ca_file %s holds no PEM certificate: %w", caFile, ErrInvalidConfig)
		}
		t.RootCAs = pool
	}
	var expiry time.Time
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("mqtt: load client certificate %s and key %s: %w", certFile, keyFile, err)
		}
		leaf := pair.Leaf
		if leaf == nil {
			if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
				return nil, time.Time{}, fmt.Errorf("mqtt: parse client certificate %s: %w", certFile, err)
			}
		}
		expiry = leaf.NotAfter
		t.Certificates = []tls.Certificate{pair}
	}
	return t, expiry, nil
}

// lockedRand lets a caller-supplied *rand.Rand, which is not safe for
// concurrent use, be shared between an Uplink and a Subscriber.
type lockedRand struct {
	mu sync.Mutex
	r  *mrand.Rand
}

func (l *lockedRand) int64N(n int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Int64N(n)
}

// newBackoff is one reconnect loop's wait: BackoffMin doubling to
// BackoffMax after each failed attempt, drawn uniformly from its upper half
// so a fleet that lost the same broker does not come back in lockstep.
func (c *config) newBackoff() backoff.Backoff {
	return backoff.New(c.BackoffMin, c.BackoffMax, nil).WithJitter(c.rand.int64N)
}
