package lora

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/lora/gwmp"
)

// pushFrame builds a one-rxpk PUSH_DATA (~330 bytes, a typical size) whose
// LoRaWAN FCnt and tmst carry the sequence number i.
func pushFrame(version uint8, eui gwmp.EUI, i int) []byte {
	phy := []byte{0x40, 0xDA, 0x1B, 0x01, 0x26, 0x80, 0, 0, 0x0A, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0xDE, 0xAD, 0xBE, 0xEF}
	binary.LittleEndian.PutUint16(phy[6:], uint16(i))
	b := gwmp.AppendHeader(make([]byte, 0, 400), gwmp.Header{Version: version, Token: uint16(i), ID: gwmp.PushData, EUI: eui})
	return fmt.Appendf(b, `{"rxpk":[{"time":"2026-07-01T10:00:00.%06dZ","tmms":1435000000%03d,"tmst":%d,"chan":%d,"rfch":1,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","lsnr":9.5,"rssi":-57,"size":%d,"data":"%s"}]}`,
		i%1_000_000, i%1000, i, i%8, len(phy), base64.StdEncoding.EncodeToString(phy))
}

// rssKB reads a VmRSS/VmHWM-style line from /proc/self/status.
func rssKB(field string) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			return strings.TrimSpace(strings.TrimPrefix(l, field+":"))
		}
	}
	return "?"
}

// TestBurst sends 20,000 PUSH_DATA as fast as one loopback sender can and
// checks that each is acknowledged and attested, in order, with no socket
// drop, while a goroutine drains the observations.
func TestBurst(t *testing.T) {
	const n = burstDatagrams
	s := startServer(t, Opts{}, 1024)
	if !dropsSupported {
		t.Fatal("this test needs Linux's SO_RXQ_OVFL drop counter")
	}
	if got := s.dev.Stats().ReceiveBuffer; got < DefaultReceiveBuffer {
		t.Fatalf("receive buffer granted %d < %d: run as root or raise net.core.rmem_max", got, DefaultReceiveBuffer)
	}
	c, err := net.DialUDP("udp", nil, s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The sender's own buffer must hold the 20,000 acks it reads back.
	if rc, err := c.SyscallConn(); err == nil {
		setupSocket(rc, 8<<20, true)
	}

	frames := make([][]byte, n)
	for i := range frames {
		frames[i] = pushFrame(2, testEUI, i)
	}
	drained := make(chan error, 1)
	go func() {
		for i := range n {
			o := <-s.obs
			rx, ok := o.Data.(drivers.LoRaRX)
			if !ok || rx.Tmst != uint32(i) || rx.FCnt == nil || *rx.FCnt != uint32(uint16(i)) {
				drained <- fmt.Errorf("observation %d out of order or wrong: %+v", i, o.Data)
				return
			}
		}
		drained <- nil
	}()
	acked := make(chan error, 1)
	go func() {
		buf := make([]byte, 64)
		for i := range n {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			m, err := c.Read(buf)
			if err != nil {
				acked <- fmt.Errorf("ack %d: %w", i, err)
				return
			}
			if m != 4 || buf[3] != byte(gwmp.PushAck) || binary.BigEndian.Uint16(buf[1:3]) != uint16(i) {
				acked <- fmt.Errorf("ack %d: got %x", i, buf[:m])
				return
			}
		}
		acked <- nil
	}()

	start := time.Now()
	for _, f := range frames {
		if _, err := c.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	sent := time.Since(start)
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	done := time.Since(start)
	if err := <-acked; err != nil {
		t.Fatal(err)
	}
	st := s.dev.Stats()
	if st.SocketDrops != 0 || st.RxOK != n || st.Datagrams != n {
		t.Fatalf("drops %d, rx ok %d, datagrams %d; want 0, %d, %d", st.SocketDrops, st.RxOK, st.Datagrams, n, n)
	}
	t.Logf("%d datagrams sent in %v (%.0f/s); all attested after %v (%.0f/s); drops %d; VmHWM %s VmRSS %s",
		n, sent.Round(time.Millisecond), n/sent.Seconds(), done.Round(time.Millisecond), n/done.Seconds(), st.SocketDrops, rssKB("VmHWM"), rssKB("VmRSS"))
}

// TestDropsCounted fills a deliberately small socket buffer while the
// pipeline is blocked and checks that every datagram is either handled or
// counted as a kernel drop.
func TestDropsCounted(t *testing.T) {
	logs := &logBuffer{}
	s := startServer(t, Opts{ReceiveBuffer: 64 << 10, Logger: logs.logger(), queue: 1}, 0) // unbuffered: emit blocks
	c, err := net.DialUDP("udp", nil, s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 500
	for i := range n {
		if _, err := c.Write(pushFrame(2, testEUI, i)); err != nil {
			t.Fatal(err)
		}
	}
	// Unblock the pipeline and let the queue drain.
	got := 0
	quiet := time.NewTimer(500 * time.Millisecond)
drain:
	for {
		select {
		case <-s.obs:
			got++
			quiet.Reset(500 * time.Millisecond)
		case <-quiet.C:
			break drain
		}
	}
	// The drop counter is polled: it is right without another datagram.
	condtest.WaitFor(t, 5*time.Second, "drop counter polled", func() bool { st := s.dev.Stats(); return st.SocketDrops+uint64(got) == n })
	st := s.dev.Stats()
	if st.SocketDrops == 0 || st.SocketDrops+uint64(got) != n {
		t.Fatalf("handled %d + dropped %d != sent %d", got, st.SocketDrops, n)
	}
	if !strings.Contains(logs.String(), "kernel dropped packet forwarder datagrams") {
		t.Errorf("drops not logged:\n%s", logs.String())
	}
	t.Logf("64 KiB buffer: %d handled, %d dropped and counted", got, st.SocketDrops)
}

// TestReceiveBufferCapped plays an unprivileged daemon: SO_RCVBUF is capped
// by net.core.rmem_max, and the log says how to raise it.
func TestReceiveBufferCapped(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Fatalf("read rmem_max: %v", err)
	}
	var rmemMax int
	fmt.Sscan(string(b), &rmemMax)
	want := 4*rmemMax + 4096
	if want > 1<<30 {
		t.Fatalf("net.core.rmem_max %d is too large for this test", rmemMax)
	}
	logs := &logBuffer{}
	s := startServer(t, Opts{ReceiveBuffer: want, Logger: logs.logger(), noForce: true}, 1)
	if got := s.dev.Stats().ReceiveBuffer; got != 2*rmemMax {
		t.Fatalf("granted %d; want the kernel's cap 2*rmem_max = %d", got, 2*rmemMax)
	}
	for _, w := range []string{"receive buffer smaller than configured", "sysctl -w net.core.rmem_max=", "rmem_max=" + fmt.Sprint(rmemMax)} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, logs.String())
		}
	}
}

// BenchmarkDatagram measures the server's CPU cost per packet from a
// datagram in memory to the emitted lora.rx: decode, ACK (a real sendto on
// loopback), frame checks, SHA-256, LoRaWAN header, emit. The read syscall
// is not included (see TestBurst for the whole path).
func BenchmarkDatagram(b *testing.B) {
	d, err := New("bench", &Opts{Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	go func() { // keep the sink's buffer from filling
		buf := make([]byte, 64)
		for {
			if _, err := sink.Read(buf); err != nil {
				return
			}
		}
	}()
	from := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	frame := pushFrame(2, testEUI, 1)
	var n int
	emit := func(_ context.Context, o drivers.Observation) error { n++; return nil }
	ctx := context.Background()
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	d.conn, d.work = conn, make(chan item, 1)
	for b.Loop() {
		d.receive(ctx, conn, frame, from, time.Now())
		it := <-d.work
		if err := d.handlePush(ctx, emit, it.buf, it.from, it.at); err != nil {
			b.Fatal(err)
		}
	}
	if n != b.N {
		b.Fatalf("%d observations for %d datagrams", n, b.N)
	}
}
