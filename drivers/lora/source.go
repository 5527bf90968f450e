package lora

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edge-agent/edge-agent/backoff"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/lora/chirpstack"
	"github.com/edge-agent/edge-agent/drivers/lora/gwmp"
	"github.com/edge-agent/edge-agent/drivers/lora/zmtp"
)

// The read-only sources: ChirpStack Concentratord's ZeroMQ event socket and
// a ChirpStack Gateway Bridge / MQTT Forwarder broker. Both deliver
// gw.UplinkFrame and gw.GatewayStats, attested under the same rules as the
// udp path. Neither ever sends anything to the concentrator: the
// concentratord command socket is never opened, and nothing is published.

// probeSource: these modes have no local resource to bind; the source may
// legitimately start after the agent. Run reports the connection state.
func (d *Dev) probeSource() (drivers.Probe, error) {
	if d.o.Mode == ModeConcentratord {
		if !strings.HasPrefix(d.o.EventURL, "ipc://") && !strings.HasPrefix(d.o.EventURL, "tcp://") {
			return drivers.Failed, fmt.Errorf("lora: probe %s: event_url %q: want ipc:// or tcp://: %w", d.name, d.o.EventURL, ErrInvalidOption)
		}
	}
	return drivers.Loaded, nil
}

func (d *Dev) setConnected(ok bool, err error) {
	d.mu.Lock()
	d.stats.Connected = ok
	if err != nil {
		d.stats.LastError = err.Error()
	}
	d.mu.Unlock()
}

// sourceMsg is one message from a source: an uplink or a stats report.
type sourceMsg struct {
	up    *chirpstack.UplinkFrame
	stats *chirpstack.GatewayStats
	at    time.Time
}

// runConcentratord subscribes to the event socket, reconnecting with
// backoff whenever concentratord is absent or restarts.
func (d *Dev) runConcentratord(ctx context.Context, emit drivers.Emit) error {
	bo := backoff.New(backoffMin, backoffMax, d.o.Clock)
	for ctx.Err() == nil {
		got, err := d.concentratordSession(ctx, emit)
		if ctx.Err() != nil {
			return nil
		}
		var fatal *emitError
		if errors.As(err, &fatal) {
			return fatal.err
		}
		d.setConnected(false, err)
		if got {
			bo.Reset()
		}
		wait := bo.Next()
		if ok, sup := d.badLog.Allow(d.o.Now()); ok {
			d.log.Warn("concentratord event socket unavailable; retrying", "event_url", d.o.EventURL, "err", err,
				"retry_in", wait, "suppressed", sup,
				"check", "is chirpstack-concentratord running, and is its api.event_bind this event_url?")
		}
		if bo.Wait(ctx, wait) != nil {
			return nil
		}
	}
	return nil
}

// emitError marks an emit failure, which ends Run (the pipeline is gone).
type emitError struct{ err error }

func (e *emitError) Error() string { return e.err.Error() }

func (d *Dev) concentratordSession(ctx context.Context, emit drivers.Emit) (bool, error) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	sub, err := zmtp.Dial(dctx, d.o.EventURL, nil)
	cancel()
	if err != nil {
		return false, fmt.Errorf("lora: concentratord: %w", err)
	}
	defer sub.Close()
	stop := context.AfterFunc(ctx, func() { _ = sub.Close() })
	defer stop()
	d.setConnected(true, nil)
	d.log.Info("subscribed to concentratord events (read-only)", "event_url", d.o.EventURL)
	got := false
	for {
		frames, err := sub.Recv()
		if err != nil {
			return got, fmt.Errorf("lora: concentratord %s: receive: %w", d.o.EventURL, err)
		}
		got = true
		now := d.o.Now()
		d.mu.Lock()
		d.stats.Datagrams++
		d.mu.Unlock()
		if len(frames) == 0 {
			continue
		}
		// concentratord v4 sends one frame, a gw.Event; older ones sent an
		// "up"/"stats" frame before the message.
		var ev chirpstack.Event
		switch {
		case len(frames) == 2 && string(frames[0]) == "up":
			var u chirpstack.UplinkFrame
			u, err = chirpstack.DecodeUplinkFrame(frames[1])
			ev.Uplink = &u
		case len(frames) == 2 && string(frames[0]) == "stats":
			var s chirpstack.GatewayStats
			s, err = chirpstack.DecodeGatewayStats(frames[1])
			ev.Stats = &s
		default:
			ev, err = chirpstack.DecodeEvent(frames[len(frames)-1])
		}
		if err != nil {
			reason := "protobuf"
			switch {
			case errors.Is(err, chirpstack.ErrLegacy):
				reason = "legacy_format"
			case errors.Is(err, chirpstack.ErrEmpty):
				reason = "other_event"
			}
			d.badDatagram(reason, d.o.EventURL, err, now)
			continue
		}
		if err := d.source(ctx, emit, sourceMsg{up: ev.Uplink, stats: ev.Stats, at: now}); err != nil {
			return got, &emitError{err: fmt.Errorf("lora: run %s: emit: %w", d.name, err)}
		}
	}
}

// runMQTT subscribes to {topic}/gateway/+/event/up and …/stats.
func (d *Dev) runMQTT(ctx context.Context, emit drivers.Emit) error {
	msgs := make(chan sourceMsg, 1024)
	m := d.o.MQTT
	server, err := url.Parse(m.Server)
	if err != nil {
		return fmt.Errorf("lora: run %s: mqtt server %q: %w", d.name, m.Server, ErrInvalidOption)
	}
	prefix := strings.TrimSuffix(m.Topic, "/") + "/gateway/"
	onMessage := func(_ paho.Client, msg paho.Message) {
		now := d.o.Now()
		d.mu.Lock()
		d.stats.Datagrams++
		d.mu.Unlock()
		rest, ok := strings.CutPrefix(msg.Topic(), prefix)
		id, event, ok2 := strings.Cut(rest, "/event/")
		if !ok || !ok2 || strings.Contains(id, "/") {
			d.badDatagram("topic", msg.Topic(), errors.New("lora: unexpected topic"), now)
			return
		}
		sm := sourceMsg{at: now}
		var derr error
		switch event {
		case "up":
			var u chirpstack.UplinkFrame
			if m.Marshaler == "json" {
				u, derr = chirpstack.UplinkFrameFromJSON(msg.Payload())
			} else {
				u, derr = chirpstack.DecodeUplinkFrame(msg.Payload())
			}
			sm.up = &u
			if derr == nil && u.RX.GatewayID == "" {
				u.RX.GatewayID = id
			}
		case "stats":
			var s chirpstack.GatewayStats
			if m.Marshaler == "json" {
				s, derr = chirpstack.GatewayStatsFromJSON(msg.Payload())
			} else {
				s, derr = chirpstack.DecodeGatewayStats(msg.Payload())
			}
			sm.stats = &s
			if derr == nil && s.GatewayID == "" {
				s.GatewayID = id
			}
		default:
			return // ack, conn, exec…: not evidence
		}
		if derr != nil {
			reason := m.Marshaler
			if errors.Is(derr, chirpstack.ErrLegacy) {
				reason = "legacy_format"
			}
			d.badDatagram(reason, msg.Topic(), fmt.Errorf("%w (is the bridge's marshaler %q?)", derr, m.Marshaler), now)
			return
		}
		select {
		case msgs <- sm:
		case <-ctx.Done():
		}
	}
	lost := make(chan error, 1)
	o := paho.NewClientOptions()
	o.AddBroker(server.String())
	o.SetClientID(m.ClientID)
	o.SetUsername(m.Username)
	o.SetPassword(m.Password)
	o.SetProtocolVersion(4)
	o.SetCleanSession(true)
	o.SetOrderMatters(true)
	o.SetAutoReconnect(false)
	o.SetConnectRetry(false)
	o.SetConnectTimeout(10 * time.Second)
	o.SetKeepAlive(30 * time.Second)
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		select {
		case lost <- err:
		default:
		}
	})
	// Jittered: the broker may be the network server's, shared by a fleet
	// of gateways that would otherwise all come back at the same instants
	// after it restarts. (Concentratord is local: no herd, no jitter.)
	bo := backoff.New(backoffMin, backoffMax, d.o.Clock).WithJitter(rand.Int64N)
	redacted := server.Redacted()
	for ctx.Err() == nil {
		client := paho.NewClient(o)
		err := waitTok(ctx, client.Connect(), 15*time.Second)
		for _, ev := range []string{"up", "stats"} {
			if err == nil {
				err = waitTok(ctx, client.Subscribe(prefix+"+/event/"+ev, 0, onMessage), 15*time.Second)
			}
		}
		if err == nil {
			d.setConnected(true, nil)
			bo.Reset()
			d.log.Info("subscribed to gateway bridge events (read-only)", "server", redacted, "topic", prefix+"+/event/{up,stats}", "marshaler", m.Marshaler)
			err = d.drain(ctx, emit, msgs, lost)
			var fatal *emitError
			if errors.As(err, &fatal) {
				client.Disconnect(0)
				return fatal.err
			}
		}
		client.Disconnect(250)
		if ctx.Err() != nil {
			return nil
		}
		d.setConnected(false, err)
		wait := bo.Next()
		if ok, sup := d.badLog.Allow(d.o.Now()); ok {
			d.log.Warn("gateway bridge broker unavailable; retrying", "server", redacted, "err", err, "retry_in", wait, "suppressed", sup,
				"check", "is the broker running, and is this the server the ChirpStack Gateway Bridge / MQTT Forwarder publishes to?")
		}
		if bo.Wait(ctx, wait) != nil {
			return nil
		}
	}
	return nil
}

func (d *Dev) drain(ctx context.Context, emit drivers.Emit, msgs <-chan sourceMsg, lost <-chan error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-lost:
			return fmt.Errorf("lora: mqtt connection lost: %w", err)
		case m := <-msgs:
			if err := d.source(ctx, emit, m); err != nil {
				return &emitError{err: fmt.Errorf("lora: run %s: emit: %w", d.name, err)}
			}
		}
	}
}

func waitTok(ctx context.Context, tok paho.Token, limit time.Duration) error {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return errors.New("lora: mqtt: no answer from the broker")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// source attests one uplink or stats report from a read-only source.
func (d *Dev) source(ctx context.Context, emit drivers.Emit, m sourceMsg) error {
	var id string
	if m.up != nil {
		id = m.up.RX.GatewayID
	} else {
		id = m.stats.GatewayID
	}
	eui, err := gwmp.ParseEUI(id)
	if err != nil {
		d.badDatagram("gateway_id", id, err, m.at)
		return nil
	}
	d.mu.Lock()
	g, reason := d.admit(eui, m.at)
	if g == nil {
		d.malformed[reason]++
		d.mu.Unlock()
		return nil
	}
	g.LastSeen = m.at
	d.mu.Unlock()
	if m.stats != nil {
		s := m.stats
		st := Stat{Gateway: g.EUI}
		if s.HaveRX {
			st.RXNb, st.RXOK = &s.RXReceived, &s.RXReceivedOK
		}
		if s.HaveTX {
			st.DWNb, st.TXNb = &s.TXReceived, &s.TXEmitted
		}
		if l := s.Location; l != nil {
			st.Lati, st.Long, st.Alti = &l.Latitude, &l.Longitude, &l.Altitude
		}
		if !s.Time.IsZero() {
			st.TimeUnixNano = s.Time.UnixNano()
		}
		for _, reason := range checkStat(&st) {
			d.countInvalid(nil, reason, id, fmt.Errorf("lora: stats from %s: %s out of range: dropped from the record", id, reason), m.at)
		}
		return d.emitStat(ctx, emit, g, st, m.at)
	}
	rx, v, reason, err := frameFromChirpStack(m.up, g.EUI, d.o.IncludePayload)
	d.mu.Lock()
	switch v {
	case verdictOK:
		g.RxOK++
		d.stats.RxOK++
	case verdictBadCRC:
		g.RxBadCRC++
		d.stats.RxBadCRC++
	case verdictNoCRC:
		g.RxNoCRC++
		d.stats.RxNoCRC++
	}
	d.mu.Unlock()
	if v == verdictInvalid {
		d.countInvalid(g, reason, id, err, m.at)
		return nil
	}
	if v != verdictOK {
		return nil
	}
	return emit(ctx, drivers.Observation{Kind: drivers.KindLoRaRX, Source: d.name, Time: m.at, Data: rx})
}

// frameFromChirpStack applies the udp path's evidence rules to a
// gw.UplinkFrame: CRC_OK only, a payload, a frequency, LoRa or FSK, signal
// values in range. Concentratord's context is the concentrator counter.
func frameFromChirpStack(u *chirpstack.UplinkFrame, eui string, includePayload bool) (drivers.LoRaRX, verdict, string, error) {
	var rx drivers.LoRaRX
	switch u.RX.CRCStatus {
	case chirpstack.CRCOK:
	case chirpstack.BadCRC:
		return rx, verdictBadCRC, "", nil
	case chirpstack.NoCRC:
		return rx, verdictNoCRC, "", nil
	default:
		return rx, verdictInvalid, "rxpk", fmt.Errorf("lora: crc_status %d: %w", u.RX.CRCStatus, gwmp.ErrField)
	}
	if u.Frequency == 0 || len(u.PHYPayload) == 0 || len(u.PHYPayload) > maxPHY {
		return rx, verdictInvalid, "rxpk", fmt.Errorf("%w: need a frequency and 1 to %d payload bytes", errMissing, maxPHY)
	}
	rssi, snr := float64(u.RX.RSSI), float64(u.RX.SNR)
	if reason, err := checkSignal(rssi, snr); err != nil {
		return rx, verdictInvalid, reason, err
	}
	rx = drivers.LoRaRX{
		Size: uint32(len(u.PHYPayload)), FreqHz: uint64(u.Frequency), RSSI: rssi, SNR: snr,
		Chan: uint8(min(u.RX.Channel, 255)), RFChain: uint8(min(u.RX.RFChain, 255)), Gateway: eui,
	}
	switch {
	case u.LoRa != nil:
		m := u.LoRa
		if m.SpreadingFactor < 5 || m.SpreadingFactor > 12 || m.Bandwidth == 0 {
			return drivers.LoRaRX{}, verdictInvalid, "rxpk", fmt.Errorf("lora: SF%d BW%d: %w", m.SpreadingFactor, m.Bandwidth, gwmp.ErrField)
		}
		rx.Mod, rx.SF, rx.BWHz, rx.CodeRate = "LORA", uint8(m.SpreadingFactor), m.Bandwidth, m.CodeRate
		rx.DataRate = fmt.Sprintf("SF%dBW%s", m.SpreadingFactor, khz(m.Bandwidth))
	case u.FSK != nil && u.FSK.Datarate > 0:
		rx.Mod, rx.DataRate = "FSK", fmt.Sprint(u.FSK.Datarate)
	default:
		return drivers.LoRaRX{}, verdictInvalid, "modulation", fmt.Errorf("lora: modulation neither LoRa nor FSK: %w", gwmp.ErrField)
	}
	if len(u.RX.Context) == 4 {
		rx.Tmst = binary.BigEndian.Uint32(u.RX.Context)
	}
	if d := u.RX.TimeSinceGPSEpoch; d != nil && *d > 0 {
		rx.GPSTimeMS = uint64(*d / time.Millisecond)
	}
	if t := u.RX.GWTime; !t.IsZero() && t.Year() >= 2000 && t.Year() < 2200 {
		rx.GWTime = t.UnixNano()
	}
	parseMAC(&rx, u.PHYPayload)
	sum := sha256.Sum256(u.PHYPayload)
	rx.SHA256 = sum[:]
	if includePayload {
		rx.Payload = u.PHYPayload
	}
	return rx, verdictOK, "", nil
}

// khz writes a bandwidth as the forwarders do: 125, 62.5, 7.8.
func khz(hz uint32) string {
	s := fmt.Sprintf("%d.%03d", hz/1000, hz%1000)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}
