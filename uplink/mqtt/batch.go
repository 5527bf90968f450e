package mqtt

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// paho writes each packet with its own Write, one syscall per PUBLISH: at
// 1,000 records/s that was a tenth of the daemon's CPU. batchConn sits
// between paho and the socket and sends what paho wrote within batchWindow
// in one write: the first Write of a batch wakes the flusher, which waits
// out the window (or until batchFlushAt bytes wait) and writes them all.
// A lone packet (CONNECT, PINGREQ, one record after a quiet spell) goes out
// batchWindow late, far inside any MQTT timeout.
//
// Write returns before the bytes reach the socket, so a failed send shows
// as the error of a later Write (and the connection is closed, which ends
// paho's reader too); nothing is lost by that, since a record counts as
// delivered only on its PUBACK.
//
// Reads are buffered too: paho reads a packet's fixed header byte by byte,
// three reads per PUBACK straight from the socket.
const (
	batchWindow  = time.Millisecond
	batchFlushAt = 32 << 10 // bytes that are sent without waiting out the window
	batchMax     = 1 << 20  // bytes buffered before Write blocks (the socket is slow)
	// batchCloseWait bounds sending the last bytes on Close.
	batchCloseWait = 250 * time.Millisecond
)

type batchConn struct {
	net.Conn
	timeout time.Duration // per socket write (paho's write timeout)
	r       *bufio.Reader // paho's one reader goroutine only

	mu      sync.Mutex
	changed *sync.Cond // the buffer was taken, or the connection failed
	buf     []byte     // written by paho, not yet sent
	spare   []byte     // the other buffer, reused
	err     error      // first send error: every later Write returns it
	kick    chan struct{}
	full    chan struct{}
	done    chan struct{}
	closed  sync.Once
	writing sync.Mutex // one socket write at a time (the flusher's or Close's)

	writes atomic.Uint64 // socket writes, for the tests
}

func newBatchConn(c net.Conn, timeout time.Duration) *batchConn {
	b := &batchConn{Conn: c, timeout: timeout, r: bufio.NewReaderSize(c, 4096), kick: make(chan struct{}, 1), full: make(chan struct{}, 1), done: make(chan struct{})}
	b.changed = sync.NewCond(&b.mu)
	go b.flusher()
	return b
}

func (b *batchConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// Write queues p for the flusher.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	for len(b.buf) >= batchMax && b.err == nil {
		b.changed.Wait()
	}
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	first := len(b.buf) == 0
	b.buf = append(b.buf, p...)
	full := len(b.buf) >= batchFlushAt
	b.mu.Unlock()
	if first {
		notify(b.kick)
	}
	if full {
		notify(b.full)
	}
	return len(p), nil
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// SetWriteDeadline is paho's per-packet deadline; the flusher sets its own
// on each socket write instead.
func (b *batchConn) SetWriteDeadline(time.Time) error { return nil }

func (b *batchConn) flusher() {
	t := time.NewTimer(batchWindow)
	t.Stop()
	for {
		select {
		case <-b.kick:
		case <-b.done:
			return
		}
		t.Reset(batchWindow)
		select {
		case <-t.C:
		case <-b.full:
			t.Stop()
		case <-b.done:
			t.Stop()
			return
		}
		select { // a stale signal from the batch just taken
		case <-b.full:
		default:
		}
		if err := b.send(b.timeout); err != nil {
			b.Conn.Close()
			return
		}
	}
}

// send writes what is buffered within timeout; an error sticks for every
// later Write.
func (b *batchConn) send(timeout time.Duration) error {
	b.writing.Lock()
	defer b.writing.Unlock()
	b.mu.Lock()
	out := b.buf
	b.buf, b.spare = b.spare[:0], nil
	err := b.err
	b.changed.Broadcast()
	b.mu.Unlock()
	if len(out) > 0 && err == nil {
		b.Conn.SetWriteDeadline(time.Now().Add(timeout))
		b.writes.Add(1)
		_, err = b.Conn.Write(out)
	}
	b.mu.Lock()
	if b.spare == nil {
		b.spare = out[:0]
	}
	if err != nil && b.err == nil {
		b.err = err
	}
	b.changed.Broadcast()
	b.mu.Unlock()
	return err
}

// Close sends what is still buffered (paho's DISCONNECT, last PUBLISHes)
// within batchCloseWait, then closes the socket.
func (b *batchConn) Close() error {
	var err error
	b.closed.Do(func() {
		close(b.done)
		b.Conn.SetWriteDeadline(time.Now().Add(batchCloseWait)) // a flusher stuck on a dead peer gives up
		b.send(batchCloseWait)
		b.mu.Lock()
		if b.err == nil {
			b.err = net.ErrClosed
		}
		b.changed.Broadcast()
		b.mu.Unlock()
		err = b.Conn.Close()
	})
	return err
}
