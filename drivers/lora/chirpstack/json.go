package chirpstack

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The protojson forms (the bridge's "json" marshaler). protojson leaves
// zero values out and writes 64-bit integers as strings; every integer here
// is 32-bit, so numbers.

type jsonUplink struct {
	PHYPayload []byte `json:"phyPayload"`
	TxInfo     *struct {
		Frequency  uint32 `json:"frequency"`
		Modulation *struct {
			LoRa *struct {
				Bandwidth       uint32 `json:"bandwidth"`
				SpreadingFactor uint32 `json:"spreadingFactor"`
				CodeRate        string `json:"codeRate"`
				CodeRateLegacy  string `json:"codeRateLegacy"`
			} `json:"lora"`
			FSK *struct {
				FrequencyDeviation uint32 `json:"frequencyDeviation"`
				Datarate           uint32 `json:"datarate"`
			} `json:"fsk"`
			LRFHSS json.RawMessage `json:"lrFhss"`
		} `json:"modulation"`
	} `json:"txInfo"`
	RxInfo *struct {
		GatewayID         string        `json:"gatewayId"`
		UplinkID          uint32        `json:"uplinkId"`
		GWTime            string        `json:"gwTime"`
		TimeSinceGPSEpoch string        `json:"timeSinceGpsEpoch"`
		RSSI              int32         `json:"rssi"`
		SNR               float32       `json:"snr"`
		Channel           uint32        `json:"channel"`
		RFChain           uint32        `json:"rfChain"`
		Board             uint32        `json:"board"`
		Antenna           uint32        `json:"antenna"`
		Location          *jsonLocation `json:"location"`
		Context           []byte        `json:"context"`
		CRCStatus         string        `json:"crcStatus"`
	} `json:"rxInfo"`
	TxInfoLegacy json.RawMessage `json:"txInfoLegacy"`
}

type jsonLocation struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Altitude  float64 `json:"altitude"`
}

// UplinkFrameFromJSON decodes the protojson form of a gw.UplinkFrame.
func UplinkFrameFromJSON(b []byte) (UplinkFrame, error) {
	var j jsonUplink
	if err := json.Unmarshal(b, &j); err != nil {
		return UplinkFrame{}, fmt.Errorf("chirpstack: uplink frame: %w: %v", ErrJSON, err)
	}
	if j.TxInfo == nil || j.RxInfo == nil {
		if j.TxInfoLegacy != nil {
			return UplinkFrame{}, ErrLegacy
		}
		return UplinkFrame{}, fmt.Errorf("chirpstack: uplink frame without txInfo or rxInfo: %w", ErrJSON)
	}
	u := UplinkFrame{PHYPayload: j.PHYPayload, Frequency: j.TxInfo.Frequency}
	if m := j.TxInfo.Modulation; m != nil {
		switch {
		case m.LoRa != nil:
			cr := codeRateName(m.LoRa.CodeRate)
			if cr == "" {
				cr = m.LoRa.CodeRateLegacy
			}
			u.LoRa = &LoRaModulation{Bandwidth: m.LoRa.Bandwidth, SpreadingFactor: m.LoRa.SpreadingFactor, CodeRate: cr}
		case m.FSK != nil:
			u.FSK = &FSKModulation{FrequencyDeviation: m.FSK.FrequencyDeviation, Datarate: m.FSK.Datarate}
		case m.LRFHSS != nil:
			u.LRFHSS = true
		}
	}
	r := j.RxInfo
	u.RX = RxInfo{GatewayID: r.GatewayID, UplinkID: r.UplinkID, RSSI: r.RSSI, SNR: r.SNR, Channel: r.Channel,
		RFChain: r.RFChain, Board: r.Board, Antenna: r.Antenna, Context: r.Context}
	if r.GWTime != "" {
		t, err := time.Parse(time.RFC3339Nano, r.GWTime)
		if err != nil {
			return UplinkFrame{}, fmt.Errorf("chirpstack: gwTime %q: %w", r.GWTime, ErrJSON)
		}
		u.RX.GWTime = t.UTC()
	}
	if r.TimeSinceGPSEpoch != "" {
		d, err := parseDuration(r.TimeSinceGPSEpoch)
		if err != nil {
			return UplinkFrame{}, err
		}
		u.RX.TimeSinceGPSEpoch = &d
	}
	if r.Location != nil {
		u.RX.Location = &Location{Latitude: r.Location.Latitude, Longitude: r.Location.Longitude, Altitude: r.Location.Altitude}
	}
	switch r.CRCStatus {
	case "", "NO_CRC":
		u.RX.CRCStatus = NoCRC
	case "BAD_CRC":
		u.RX.CRCStatus = BadCRC
	case "CRC_OK":
		u.RX.CRCStatus = CRCOK
	default:
		return UplinkFrame{}, fmt.Errorf("chirpstack: crcStatus %q: %w", r.CRCStatus, ErrJSON)
	}
	return u, nil
}

// parseDuration reads protojson's Duration form: decimal seconds and "s".
func parseDuration(s string) (time.Duration, error) {
	num, ok := strings.CutSuffix(s, "s")
	f, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || f != f || f > 9e9 || f < -9e9 {
		return 0, fmt.Errorf("chirpstack: duration %q: %w", s, ErrJSON)
	}
	sec, frac, _ := strings.Cut(num, ".")
	whole, _ := strconv.ParseInt(sec, 10, 64)
	d := time.Duration(whole) * time.Second
	if frac != "" {
		frac = (frac + "000000000")[:9]
		n, _ := strconv.ParseInt(frac, 10, 64)
		if strings.HasPrefix(sec, "-") {
			n = -n
		}
		d += time.Duration(n)
	}
	return d, nil
}

type jsonStats struct {
	GatewayID    string        `json:"gatewayId"`
	Time         string        `json:"time"`
	Location     *jsonLocation `json:"location"`
	RXReceived   uint32        `json:"rxPacketsReceived"`
	RXReceivedOK uint32        `json:"rxPacketsReceivedOk"`
	TXReceived   uint32        `json:"txPacketsReceived"`
	TXEmitted    uint32        `json:"txPacketsEmitted"`
}

// GatewayStatsFromJSON decodes the protojson form of a gw.GatewayStats.
func GatewayStatsFromJSON(b []byte) (GatewayStats, error) {
	var j jsonStats
	if err := json.Unmarshal(b, &j); err != nil {
		return GatewayStats{}, fmt.Errorf("chirpstack: gateway stats: %w: %v", ErrJSON, err)
	}
	s := GatewayStats{GatewayID: j.GatewayID, RXReceived: j.RXReceived, RXReceivedOK: j.RXReceivedOK,
		TXReceived: j.TXReceived, TXEmitted: j.TXEmitted, HaveRX: true, HaveTX: true}
	if j.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, j.Time)
		if err != nil {
			return GatewayStats{}, fmt.Errorf("chirpstack: time %q: %w", j.Time, ErrJSON)
		}
		s.Time = t.UTC()
	}
	if j.Location != nil {
		s.Location = &Location{Latitude: j.Location.Latitude, Longitude: j.Location.Longitude, Altitude: j.Location.Altitude}
	}
	return s, nil
}
