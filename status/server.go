package status

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// DefaultSocket is where the daemon serves the status API: systemd creates
// /run/edge-agent (RuntimeDirectory=) owned by the service user.
const DefaultSocket = "/run/edge-agent/status.sock"

// DocPath is the URL path of the status document.
const DocPath = "/v1/status"

// ServerOpts configures Listen. The zero value of each field means its default.
type ServerOpts struct {
	// Socket is the unix socket path; "" means DefaultSocket.
	Socket string
	// Mode is the socket's permission bits; 0 means 0660, so the service
	// group (field techs added to it) can read status without root.
	Mode fs.FileMode
	// Group, when set, is the group (name or number) given the socket;
	// "" keeps the process's group, which under systemd is the service's.
	Group string
	// Timeout bounds one Source.Status call; 0 means 5s.
	Timeout time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
}

// Server serves the status document on a unix socket.
type Server struct {
	src  Source
	o    ServerOpts
	log  *slog.Logger
	ln   *net.UnixListener
	made os.FileInfo // the socket file we put in place, so Run removes only ours
}

// Listen creates the socket, replacing one a crashed daemon left behind, and
// returns a Server ready to Run. The socket appears at its path already with
// its final mode and group: it is bound under a temporary name, set up, then
// renamed into place, so no client ever sees it with the umask's mode.
func Listen(src Source, o ServerOpts) (*Server, error) {
	if src == nil {
		return nil, errors.New("status: listen: no source")
	}
	if o.Socket == "" {
		o.Socket = DefaultSocket
	}
	if o.Mode == 0 {
		o.Mode = 0o660
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{src: src, o: o, log: o.Logger.With("component", "status")}
	gid := -1
	if o.Group != "" {
		var err error
		if gid, err = lookupGroup(o.Group); err != nil {
			return nil, err
		}
	}
	dir := filepath.Dir(o.Socket)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("status: create runtime directory %s: %w", dir, err)
	}
	if err := clearStale(o.Socket); err != nil {
		return nil, err
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d.tmp", filepath.Base(o.Socket), os.Getpid()))
	os.Remove(tmp) // a leftover from a crash of this same pid number
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("status: listen on %s: %w", o.Socket, err)
	}
	ln.SetUnlinkOnClose(false) // the name it would unlink is gone after the rename
	fail := func(op string, err error) (*Server, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("status: %s %s: %w", op, o.Socket, err)
	}
	if err := os.Chmod(tmp, o.Mode); err != nil {
		return fail("set mode of", err)
	}
	if gid >= 0 {
		if err := os.Chown(tmp, -1, gid); err != nil {
			return fail(fmt.Sprintf("give group %s to", o.Group), err)
		}
	}
	if err := os.Rename(tmp, o.Socket); err != nil {
		return fail("put in place", err)
	}
	if s.made, err = os.Lstat(o.Socket); err != nil {
		return fail("stat", err)
	}
	s.ln = ln
	return s, nil
}

// clearStale removes a socket nobody listens on, and refuses to replace a
// live one or a file that is not a socket.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("status: stat %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("status: %s exists and is not a socket: remove it or set another [status] socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w at %s: is another edge-agent running? stop it first", ErrInUse, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("status: probe existing socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("status: remove stale socket %s: %w", path, err)
	}
	return nil
}

func lookupGroup(name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1, fmt.Errorf("status: group %q for the status socket: %w: create it or set another [status] group", name, err)
	}
	n, err := strconv.Atoi(g.Gid)
	if err != nil {
		return -1, fmt.Errorf("status: group %q has a non-numeric gid %q", name, g.Gid)
	}
	return n, nil
}

// Socket returns the socket path.
func (s *Server) Socket() string { return s.o.Socket }

// Run serves until ctx is done, then stops accepting, lets requests in
// progress finish for up to two seconds, and removes the socket (unless
// another process has replaced it meanwhile). Cancellation returns nil.
func (s *Server) Run(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.HandleFunc(DocPath, s.serveDoc)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: the status document is at "+DocPath)
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      s.o.Timeout + 5*time.Second,
		IdleTimeout:       10 * time.Second, // `status --watch` reconnects; nobody needs to hold a slot
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(LimitListener(s.ln, MaxConns)) }()
	s.log.Info("serving status", "socket", s.o.Socket)

	var err error
	select {
	case <-ctx.Done():
		shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		srv.Shutdown(shutCtx)
		cancel()
		<-done
	case err = <-done:
		err = fmt.Errorf("status: serve %s: %w", s.o.Socket, err)
	}
	s.ln.Close()
	if fi, statErr := os.Lstat(s.o.Socket); statErr == nil && os.SameFile(fi, s.made) {
		os.Remove(s.o.Socket)
	}
	return err
}

func (s *Server) serveDoc(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.Timeout)
	defer cancel()
	doc, err := s.src.Status(ctx)
	if err == nil && doc == nil {
		err = errors.New("no document")
	}
	if err != nil {
		s.log.Warn("status document failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if doc.Schema == 0 {
		doc.Schema = SchemaVersion
	}
	if doc.Time.IsZero() {
		doc.Time = s.o.Now().UTC()
	}
	// Encode into memory first: a value JSON cannot carry (a NaN from a
	// driver) must become a loud 500 and a log line, not a 200 with an empty
	// body that `status` and doctor can only call "unknown".
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ") // read by people with curl as often as by programs
	if err := enc.Encode(doc); err != nil {
		s.log.Error("cannot encode the status document", "err", err)
		writeError(w, http.StatusInternalServerError, "the daemon cannot encode its status document ("+err.Error()+"): this is a bug, see the daemon's log")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(buf.Bytes())
}

// MaxConns is how many status connections are served at once. More clients
// wait in the kernel's listen backlog, which costs the daemon no descriptor;
// IdleTimeout and ReadHeaderTimeout close the ones that hold a slot and send
// nothing.
const MaxConns = 16

// LimitListener accepts at most n connections open at once: beyond that,
// Accept waits for one to close. It keeps idle or hostile local clients from
// using up the process's file descriptors (the outbox and the spool need
// them too).
func LimitListener(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	once  sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// errorDoc is the body of every non-200 answer.
type errorDoc struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(errorDoc{Error: msg})
}
