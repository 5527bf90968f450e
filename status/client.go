package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"syscall"
	"time"
)

// Client reads the status document from a daemon's socket.
type Client struct {
	// Socket is the unix socket path; "" means DefaultSocket.
	Socket string
	// Timeout bounds one Fetch; 0 means 10s.
	Timeout time.Duration
}

// maxDoc bounds what Fetch reads: a document is a few KiB even with many
// drivers, so anything near this is not one.
const maxDoc = 4 << 20

// Fetch reads one document. A daemon that is not running is ErrNotRunning,
// a socket this user may not open is ErrPermission, a document from a newer
// daemon is ErrSchema; each message says what to do.
func (c *Client) Fetch(ctx context.Context) (*Doc, error) {
	path := c.Socket
	if path == "" {
		path = DefaultSocket
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://edge-agent"+DocPath, nil)
	if err != nil {
		return nil, fmt.Errorf("status: fetch: %w", err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, dialError(path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDoc+1))
	if err != nil {
		return nil, fmt.Errorf("status: read document from %s: %w", path, err)
	}
	if len(body) > maxDoc {
		return nil, fmt.Errorf("%w: answer from %s is larger than %d bytes", ErrSchema, path, maxDoc)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorDoc
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return nil, fmt.Errorf("%w: %s", ErrDaemonFailed, e.Error)
	}
	return Decode(body)
}

// Decode parses a document and checks its schema version.
func Decode(data []byte) (*Doc, error) {
	var doc Doc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: not a status document: %w", ErrSchema, err)
	}
	switch {
	case doc.Schema == 0:
		return nil, fmt.Errorf("%w: no schema version: is this an edge-agent status socket?", ErrSchema)
	case doc.Schema > SchemaVersion:
		return nil, fmt.Errorf("%w: the daemon writes schema %d, this edge-agent reads up to %d: run the daemon's own binary, or upgrade this one",
			ErrSchema, doc.Schema, SchemaVersion)
	}
	return &doc, nil
}

// dialError names the cause of a failed request in the user's terms.
func dialError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("%w (no socket at %s): start it with `systemctl start edge-agent`, or run `edge-agent doctor`", ErrNotRunning, path)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w (nothing listens on %s; it may have crashed): start it with `systemctl start edge-agent`, or run `edge-agent doctor`", ErrNotRunning, path)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%w %s: run with sudo, or add your user to the service group (`usermod -aG edge-agent $USER`, then log in again)", ErrPermission, path)
	}
	return fmt.Errorf("status: fetch from %s: %w", path, err)
}
