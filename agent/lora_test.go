package agent

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/lora"
	"github.com/edge-agent/edge-agent/store"
)

// TestLoRaBurstThroughTheDaemon sends 20,000 PUSH_DATA datagrams from a
// loopback "packet forwarder" as fast as it can, and checks that every one
// is acknowledged, signed and durable, in the order sent, with no socket
// drops — the whole path a hotspot's concentrator traffic takes.
func TestLoRaBurstThroughTheDaemon(t *testing.T) {
	const n = 20_000
	dir := t.TempDir()
	cfg := configIn(dir)
	cfg.Drivers.LoRa = []config.LoRa{{}}
	cfg.Drivers.LoRa[0].Name, cfg.Drivers.LoRa[0].Mode = "hotspot", "udp"
	cfg.Drivers.LoRa[0].Listen = "127.0.0.1:0"
	cfg.Drivers.LoRa[0].ReceiveBuffer = 32 * config.MiB
	cfg.Drivers.LoRa[0].TxAckTimeout = config.D(5 * time.Second)
	a, err := New(Options{Config: &cfg, CreateKey: true, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	srv := a.drivers[0].(*lora.Dev)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	defer stop()
	var addr net.Addr
	condtest.WaitFor(t, 10*time.Second, "the packet forwarder server to start", func() bool {
		ap, ok := srv.Addr()
		addr = net.UDPAddrFromAddrPort(ap)
		return ok
	})
	conn, err := net.DialUDP("udp", nil, addr.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadBuffer(8 << 20)

	// Every datagram gets its PUSH_ACK with the same token. Acks come on
	// receipt, so read them while sending: 20,000 of them waiting in the
	// client's socket would overflow its buffer (net.core.rmem_max caps it).
	type ackResult struct {
		n   int
		err error
	}
	acksDone := make(chan ackResult, 1)
	go func() {
		acks := map[uint16]bool{}
		buf := make([]byte, 64)
		conn.SetReadDeadline(time.Now().Add(120 * time.Second))
		for len(acks) < n {
			k, err := conn.Read(buf)
			if err != nil {
				acksDone <- ackResult{len(acks), err}
				return
			}
			if k != 4 || buf[0] != 2 || buf[3] != 1 {
				acksDone <- ackResult{len(acks), fmt.Errorf("not a PUSH_ACK: % x", buf[:k])}
				return
			}
			acks[binary.BigEndian.Uint16(buf[1:3])] = true
		}
		acksDone <- ackResult{len(acks), nil}
	}()

	eui := []byte{0xB8, 0x27, 0xEB, 0xFF, 0xFE, 0x5A, 0x17, 0x01}
	payloads := make([][]byte, n)
	var cpu0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &cpu0)
	start := time.Now()
	for i := range n {
		phy := make([]byte, 24)
		binary.BigEndian.PutUint64(phy, uint64(i))
		payloads[i] = phy
		body := fmt.Sprintf(`{"rxpk":[{"tmst":%d,"chan":2,"rfch":0,"freq":868.500000,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","rssi":-57,"lsnr":9.2,"size":24,"data":%q}]}`,
			1000*i, base64.StdEncoding.EncodeToString(phy))
		pkt := append([]byte{2, byte(i >> 8), byte(i), 0}, eui...)
		if _, err := conn.Write(append(pkt, body...)); err != nil {
			t.Fatal(err)
		}
	}
	sent := time.Since(start)
	if r := <-acksDone; r.err != nil {
		t.Fatalf("after %d PUSH_ACKs: %v", r.n, r.err)
	}
	// Acks come on receipt now, so this wait holds the whole pipeline time
	// (minutes under -race on a loaded machine).
	condtest.WaitFor(t, 180*time.Second, fmt.Sprintf("%d records durable", n+1), func() bool { return a.Snapshot().Stored >= n+1 })
	took := time.Since(start)
	var cpu1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &cpu1)
	cpu := time.Duration(cpu1.Utime.Nano()+cpu1.Stime.Nano()-cpu0.Utime.Nano()-cpu0.Stime.Nano()) / n
	st := srv.Stats()
	if !st.DropsCounted || st.SocketDrops != 0 {
		t.Fatalf("socket drops %d (counted: %v)", st.SocketDrops, st.DropsCounted)
	}
	t.Logf("%d datagrams sent in %v; all durable after %v (%.0f/s); %v CPU per packet, sender included; peak RSS %d MB",
		n, sent.Round(time.Millisecond), took.Round(time.Millisecond), n/took.Seconds(), cpu.Round(time.Microsecond), cpu1.Maxrss>>10)

	// The records, in order, match the packets.
	stop()
	rs, err := store.Open(cfg.Store.Path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	i := 0
	err = rs.Records(func(r store.Record) error {
		rec, err := attest.Decode(r.Data)
		if err != nil {
			return err
		}
		if rec.Claims.Kind != drivers.KindLoRaRX {
			return nil
		}
		var rx drivers.LoRaRX
		if err := cbor.Unmarshal(rec.Claims.Obs.(cbor.RawMessage), &rx); err != nil {
			return err
		}
		sum := sha256.Sum256(payloads[i])
		if string(rx.SHA256) != string(sum[:]) || rx.Tmst != uint32(1000*i) || rx.FreqHz != 868_500_000 ||
			rx.SF != 7 || rx.BWHz != 125_000 || rx.RSSI != -57 || rx.SNR != 9.2 || rx.Chan != 2 || rx.Gateway != "B827EBFFFE5A1701" {
			return fmt.Errorf("record %d does not match packet %d: %+v", r.Seq, i, rx)
		}
		i++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if i != n {
		t.Fatalf("%d lora.rx records, want %d", i, n)
	}
}
