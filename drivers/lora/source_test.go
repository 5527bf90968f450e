package lora

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/go-zeromq/zmq4"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/edge-agent/edge-agent/clock/clocktest"
	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/uplink/mqtt/mqtttest"
)

// pb builds protobuf the way concentratord (prost) writes gw.proto messages.
type pb []byte

func (b pb) varint(n protowire.Number, v uint64) pb {
	return protowire.AppendVarint(protowire.AppendTag(b, n, protowire.VarintType), v)
}
func (b pb) bytes(n protowire.Number, v []byte) pb {
	return protowire.AppendBytes(protowire.AppendTag(b, n, protowire.BytesType), v)
}
func (b pb) float(n protowire.Number, v float32) pb {
	return protowire.AppendFixed32(protowire.AppendTag(b, n, protowire.Fixed32Type), math.Float32bits(v))
}
func (b pb) double(n protowire.Number, v float64) pb {
	return protowire.AppendFixed64(protowire.AppendTag(b, n, protowire.Fixed64Type), math.Float64bits(v))
}

const csGateway = "0016c001ff10a235"

// csUplink is a gw.UplinkFrame (LoRa SF7BW125 at 868.1 MHz) with the given
// signal, CRC status and concentrator counter in its context.
func csUplink(payload []byte, rssi int32, snr float32, crc uint64, tmst uint32) []byte {
	lora := pb{}.varint(1, 125_000).varint(2, 7).varint(5, 1)
	tx := pb{}.varint(1, 868_100_000).bytes(2, pb{}.bytes(3, lora))
	gwTime := pb{}.varint(1, 1_777_000_000).varint(2, 250_000_000)
	rx := pb{}.bytes(1, []byte(csGateway)).varint(2, 99).bytes(3, gwTime).varint(6, uint64(int64(rssi))).float(7, snr).
		varint(8, 3).varint(9, 1).bytes(13, []byte{byte(tmst >> 24), byte(tmst >> 16), byte(tmst >> 8), byte(tmst)}).varint(16, crc)
	return pb{}.bytes(1, payload).bytes(4, tx).bytes(5, rx)
}

func csStats(lat float64) []byte {
	loc := pb{}.double(1, lat).double(2, 6.6).double(3, 410)
	return pb{}.bytes(17, []byte(csGateway)).bytes(3, loc).varint(5, 12).varint(6, 10).varint(7, 2).varint(8, 1)
}

func event(field protowire.Number, m []byte) []byte { return pb{}.bytes(field, m) }

// TestConcentratord subscribes to a real ZeroMQ PUB publishing gw.Event
// frames as concentratord does, starting before the publisher exists and
// surviving its restart. The reconnect backoff runs on a fake clock: the
// test sees each wait and ends it, rather than sleeping through it.
func TestConcentratord(t *testing.T) {
	ep := "ipc://" + filepath.Join(t.TempDir(), "concentratord_event")
	clk := clocktest.NewFake(time.Now())
	s := startSource(t, Opts{Mode: ModeConcentratord, EventURL: ep, StatInterval: time.Nanosecond, Clock: clk}, 64)
	condtest.WaitFor(t, 5*time.Second, "not connected while absent", func() bool { return s.dev.Stats().LastError != "" })

	pub := zmq4.NewPub(context.Background())
	if err := pub.Listen(ep); err != nil {
		t.Fatal(err)
	}
	if d := clk.AdvanceNext(t); d != backoffMin {
		t.Fatalf("first reconnect after %v, want %v", d, backoffMin)
	}
	good := csUplink(dataUp, -57, 9.5, 2, 0xD15A0001)
	first := publishUntil(t, s, func() { _ = pub.Send(zmq4.NewMsg(event(1, good))) }, drivers.KindLoRaRX)
	rx := first.Data.(drivers.LoRaRX)
	if rx.Gateway != "0016C001FF10A235" || rx.RSSI != -57 || rx.SNR != 9.5 || rx.FreqHz != 868_100_000 || rx.SF != 7 || rx.BWHz != 125_000 ||
		rx.DataRate != "SF7BW125" || rx.CodeRate != "4/5" || rx.Tmst != 0xD15A0001 || rx.Chan != 3 || rx.RFChain != 1 || rx.DevAddr != "26011BDA" ||
		rx.FPort == nil || *rx.FPort != 10 || !bytes.Equal(rx.SHA256, sum(dataUp)) || rx.GWTime != 1_777_000_000_250_000_000 {
		t.Fatalf("lora.rx %+v", rx)
	}
	if !s.dev.Stats().Connected {
		t.Error("not connected while receiving")
	}
	s.drain()
	for _, m := range [][]byte{
		event(1, csUplink(dataUp, -120, -3, 1, 1)),      // BAD_CRC: counted, not attested
		event(1, csUplink(dataUp, -2_000_000, 1, 2, 2)), // absurd RSSI: refused, counted
		event(3, pb{}.bytes(1, []byte("mesh"))),         // a mesh event: not evidence
		[]byte{0x0a, 0xff},                              // not protobuf
		event(2, csStats(1e308)),                        // absurd position: dropped from the record
	} {
		_ = pub.Send(zmq4.NewMsg(m))
	}
	st := s.nextKind(t, drivers.KindLoRaStat).Data.(Stat)
	if st.Gateway != "0016C001FF10A235" || *st.RXNb != 12 || *st.RXOK != 10 || *st.DWNb != 2 || *st.TXNb != 1 || st.Lati != nil || st.RXFW != nil || st.ACKR != nil {
		t.Fatalf("lora.stat %+v", st)
	}
	stats := s.dev.Stats()
	if stats.RxBadCRC != 1 || stats.Malformed["rssi"] != 1 || stats.Malformed["other_event"] != 1 || stats.Malformed["protobuf"] != 1 || stats.Malformed["stat_position"] != 1 {
		t.Fatalf("counters %+v", stats)
	}

	// concentratord restarts: the subscriber reconnects by itself.
	pub.Close()
	condtest.WaitFor(t, 5*time.Second, "disconnect noticed", func() bool { return !s.dev.Stats().Connected })
	pub = zmq4.NewPub(context.Background())
	if err := pub.Listen(ep); err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if d := clk.AdvanceNext(t); d != backoffMin { // a session that delivered starts the backoff over
		t.Fatalf("reconnect after a restart waited %v, want %v", d, backoffMin)
	}
	publishUntil(t, s, func() { _ = pub.Send(zmq4.NewMsg(event(1, good))) }, drivers.KindLoRaRX)
}

// TestMQTTSource reads a ChirpStack Gateway Bridge's topics on a real
// mosquitto, in both marshalers.
func TestMQTTSource(t *testing.T) {
	for _, marshaler := range []string{"protobuf", "json"} {
		t.Run(marshaler, func(t *testing.T) {
			b := mqtttest.Start(t, mqtttest.Config{})
			s := startSource(t, Opts{Mode: ModeMQTT, MQTT: MQTTOpts{Server: b.URL(), Topic: "eu868", Marshaler: marshaler}, StatInterval: time.Nanosecond}, 64)
			condtest.WaitFor(t, 5*time.Second, "subscribed", func() bool { return s.dev.Stats().Connected })
			c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("bridge-" + marshaler).SetProtocolVersion(4))
			if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("connect: %v", tok.Error())
			}
			defer c.Disconnect(0)
			publish := func(event string, payload []byte) {
				t.Helper()
				if tok := c.Publish("eu868/gateway/"+csGateway+"/event/"+event, 0, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
					t.Fatalf("publish: %v", tok.Error())
				}
			}
			up, stat := csUplink(dataUp, -88, -2.5, 2, 77), csStats(46.5)
			if marshaler == "json" {
				up = []byte(`{"phyPayload":"QNobASaAAgEKyv4BAgME","txInfo":{"frequency":868100000,"modulation":{"lora":{"bandwidth":125000,"spreadingFactor":7,"codeRate":"CR_4_5"}}},` +
					`"rxInfo":{"gatewayId":"` + csGateway + `","uplinkId":99,"gwTime":"2026-04-24T03:06:40.25Z","rssi":-88,"snr":-2.5,"channel":3,"rfChain":1,"context":"AAAATQ==","crcStatus":"CRC_OK"}}`)
				stat = []byte(`{"gatewayId":"` + csGateway + `","location":{"latitude":46.5,"longitude":6.6,"altitude":410},"rxPacketsReceived":12,"rxPacketsReceivedOk":10,"txPacketsReceived":2,"txPacketsEmitted":1}`)
			}
			publish("up", up)
			publish("stats", stat)
			publish("ack", []byte("ignored"))
			publish("up", []byte("\x00garbage{"))
			rx := s.nextKind(t, drivers.KindLoRaRX).Data.(drivers.LoRaRX)
			if rx.Gateway != "0016C001FF10A235" || rx.RSSI != -88 || rx.SNR != -2.5 || rx.Tmst != 77 || rx.DevAddr != "26011BDA" || !bytes.Equal(rx.SHA256, sum(dataUp)) {
				t.Fatalf("lora.rx %+v", rx)
			}
			st := s.nextKind(t, drivers.KindLoRaStat).Data.(Stat)
			if *st.RXNb != 12 || *st.TXNb != 1 || *st.Lati != 46.5 {
				t.Fatalf("lora.stat %+v", st)
			}
			condtest.WaitFor(t, 5*time.Second, "garbage counted", func() bool { return s.dev.Stats().Malformed[marshaler] == 1 })
		})
	}
}

// startSource runs a Dev in a source mode (no listen address).
func startSource(tb testing.TB, o Opts, obsBuf int) *server {
	tb.Helper()
	d, err := New("cs-test", &o)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{dev: d, obs: make(chan drivers.Observation, obsBuf), done: make(chan error, 1), stop: cancel}
	emit := func(ctx context.Context, ob drivers.Observation) error {
		select {
		case s.obs <- ob:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	go func() { s.done <- d.Run(ctx, emit) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-s.done; err != nil {
			tb.Errorf("Run returned %v after cancel; want nil", err)
		}
	})
	return s
}

// publishUntil repeats send until an observation of kind arrives (a PUB
// drops messages until the subscription reaches it).
func publishUntil(tb testing.TB, s *server, send func(), kind string) drivers.Observation {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		send()
		select {
		case o := <-s.obs:
			if o.Kind == kind {
				return o
			}
		case <-time.After(50 * time.Millisecond):
		}
	}
	tb.Fatalf("no %s within 10 s", kind)
	return drivers.Observation{}
}

// drain discards observations already emitted.
func (s *server) drain() {
	for {
		select {
		case <-s.obs:
		case <-time.After(100 * time.Millisecond):
			return
		}
	}
}
