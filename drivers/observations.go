package drivers

import "time"

// Observation kinds. The record format (docs/attestation.md) documents the
// "obs" map of each.
const (
	KindGNSSFix    = "gnss.fix"
	KindLoRaRX     = "lora.rx"
	KindLoRaStat   = "lora.stat"
	KindLoRaTX     = "lora.tx"
	KindEnvSample  = "env.sample"
	KindCameraFile = "camera.file"
	KindCounter    = "sim.counter" // synthetic load for tests and bench

	KindVehicleOBD   = "vehicle.obd"   // one OBD-II sample (drivers/obd)
	KindVehicleVIN   = "vehicle.vin"   // the VIN, once per boot
	KindVehicleDTC   = "vehicle.dtc"   // stored trouble codes (mode 03)
	KindEnergySample = "energy.sample" // one meter or inverter poll (drivers/energy)
)

// FixMode is the GNSS fix dimension, as NMEA GSA reports it.
type FixMode uint8

const (
	FixNone FixMode = 1 // NMEA GSA mode 1: no fix
	Fix2D   FixMode = 2
	Fix3D   FixMode = 3
)

// Fix is one GNSS epoch: the data of a gnss.fix observation and the source of
// the location stamp on every other record. A Fix with Mode < Fix2D carries
// no position, whatever numbers the receiver printed.
//
// Optional quantities are pointers: nil means the receiver did not report
// it, so a parked car's speed 0 and "no speed reported" stay distinct in a
// signed record (nil is omitted from the CBOR, a zero is written).
type Fix struct {
	TimeUnixNano int64    `cbor:"t"`              // UTC time of the fix from the receiver
	Lat          float64  `cbor:"lat"`            // degrees, WGS84, full float64 precision
	Lon          float64  `cbor:"lon"`            // degrees, WGS84
	AltMSL       *float64 `cbor:"alt,omitempty"`  // metres above mean sea level
	SpeedMS      *float64 `cbor:"spd,omitempty"`  // metres per second over ground
	TrackDeg     *float64 `cbor:"trk,omitempty"`  // degrees true
	Mode         FixMode  `cbor:"mode"`           // 1 none, 2 2D, 3 3D
	Sats         *uint8   `cbor:"sats,omitempty"` // satellites used in the solution
	HDOP         *float64 `cbor:"hdop,omitempty"`

	// Quality is the solution type in NMEA GGA numbering (QualityGPS …);
	// nil when the receiver did not say.
	Quality *uint8   `cbor:"q,omitempty"`
	PDOP    *float64 `cbor:"pdop,omitempty"`
	VDOP    *float64 `cbor:"vdop,omitempty"`
	// HAccM and VAccM are the receiver's 1-sigma error estimates in metres
	// (UBX hAcc/vAcc, or NMEA GST: the root sum square of the latitude and
	// longitude sigmas, and the altitude sigma).
	HAccM *float64 `cbor:"hacc,omitempty"`
	VAccM *float64 `cbor:"vacc,omitempty"`
	// RolloverWeeks is set when the receiver printed a date 1024·n weeks in
	// the past (the GPS week-number rollover bug) and the driver added them.
	RolloverWeeks uint16 `cbor:"wro,omitempty"`
	// BackNS is set on the first fix after the receiver's time went back
	// (a reset, a rollover): how far back from the last signed fix, in ns.
	BackNS int64 `cbor:"back,omitempty"`
}

// Fix quality values, as NMEA 0183 GGA field 6 numbers them.
const (
	QualityGPS      uint8 = 1 // autonomous
	QualityDGPS     uint8 = 2 // differential (SBAS, DGPS)
	QualityPPS      uint8 = 3 // precise positioning service
	QualityRTKFixed uint8 = 4 // RTK with fixed integer ambiguities
	QualityRTKFloat uint8 = 5 // RTK with float ambiguities
)

// F64 returns a pointer to v, for the optional fields of Fix.
func F64(v float64) *float64 { return &v }

// U8 returns a pointer to v, for the optional fields of Fix.
func U8(v uint8) *uint8 { return &v }

// Time returns the fix time.
func (f Fix) Time() time.Time { return time.Unix(0, f.TimeUnixNano).UTC() }

// HasPosition reports whether the fix carries a usable position.
func (f Fix) HasPosition() bool { return f.Mode >= Fix2D }

// LoRaRX is one LoRa frame received without CRC error (lora.rx).
type LoRaRX struct {
	SHA256    []byte  `cbor:"sha256"`            // SHA-256 of the PHY payload
	Size      uint32  `cbor:"size"`              // PHY payload bytes
	Payload   []byte  `cbor:"payload,omitempty"` // the PHY payload, when include_payload is set
	FreqHz    uint64  `cbor:"freq"`
	Mod       string  `cbor:"mod"`          // "LORA" or "FSK"
	SF        uint8   `cbor:"sf,omitempty"` // spreading factor 5..12
	BWHz      uint32  `cbor:"bw,omitempty"` // bandwidth
	CodeRate  string  `cbor:"cr,omitempty"` // "4/5" …
	DataRate  string  `cbor:"datr"`         // as the forwarder wrote it: "SF7BW125" or FSK bit rate
	RSSI      float64 `cbor:"rssi"`         // dBm
	SNR       float64 `cbor:"snr"`          // dB
	Chan      uint8   `cbor:"chan"`
	RFChain   uint8   `cbor:"rfch"`
	Tmst      uint32  `cbor:"tmst"`           // concentrator counter, µs, wraps at 2^32
	GPSTimeMS uint64  `cbor:"tmms,omitempty"` // GPS time of reception, ms since GPS epoch
	Gateway   string  `cbor:"gw"`             // gateway EUI, 16 hex digits
	MType     string  `cbor:"mtype,omitempty"`
	DevAddr   string  `cbor:"devaddr,omitempty"` // 8 hex digits
	FCnt      *uint32 `cbor:"fcnt,omitempty"`
	FPort     *uint8  `cbor:"fport,omitempty"`  // data frames with a port (absent when the frame carries none)
	GWTime    int64   `cbor:"gwtime,omitempty"` // gateway's UTC time of reception (rxpk "time"), Unix ns
}

// LoRaTX is one downlink a gateway was asked to transmit (lora.tx): what the
// network server sent, through which upstream, and what the gateway
// answered.
type LoRaTX struct {
	Gateway   string  `cbor:"gw"`                // gateway EUI, 16 hex digits
	Upstream  string  `cbor:"up"`                // upstream name that sent it ("agent" for the agent's own)
	SHA256    []byte  `cbor:"sha256"`            // of the PHY payload
	Size      uint32  `cbor:"size"`              // PHY payload bytes
	Payload   []byte  `cbor:"payload,omitempty"` // when include_payload is set
	FreqHz    uint64  `cbor:"freq"`
	Mod       string  `cbor:"mod"`  // "LORA" or "FSK"
	DataRate  string  `cbor:"datr"` // "SF9BW125" or FSK bit rate
	CodeRate  string  `cbor:"cr,omitempty"`
	PowerDBm  int8    `cbor:"powe"`
	RFChain   uint8   `cbor:"rfch"`
	Immediate bool    `cbor:"imme,omitempty"`
	Tmst      *uint32 `cbor:"tmst,omitempty"` // concentrator counter to send at
	GPSTimeMS *uint64 `cbor:"tmms,omitempty"` // GPS time to send at, ms
	IPol      bool    `cbor:"ipol,omitempty"`
	Token     uint16  `cbor:"token"`           // PULL_RESP token as sent to the gateway
	Ack       string  `cbor:"ack"`             // "ok", "rejected", "timeout" (no TX_ACK in time), "v1" (no TX_ACK in protocol v1)
	Error     string  `cbor:"err,omitempty"`   // the TX_ACK error when rejected: "TOO_LATE", …
	Warn      string  `cbor:"warn,omitempty"`  // the TX_ACK warning: "TX_POWER", …
	Value     string  `cbor:"value,omitempty"` // the TX_ACK value, as sent
	DelayUS   uint64  `cbor:"delay,omitempty"` // µs from relaying the PULL_RESP to its TX_ACK
	MType     string  `cbor:"mtype,omitempty"`
	DevAddr   string  `cbor:"devaddr,omitempty"`
	FCnt      *uint32 `cbor:"fcnt,omitempty"`
	FPort     *uint8  `cbor:"fport,omitempty"`
}

// EnvSample is one environment sensor reading (env.sample).
type EnvSample struct {
	Chip        string   `cbor:"chip"`              // "bme280", "bmp280"
	TempC       float64  `cbor:"temp_c"`            // degrees Celsius
	PressurePa  float64  `cbor:"press_pa"`          // pascal
	HumidityPct *float64 `cbor:"hum_pct,omitempty"` // relative humidity; BMP280 has none
}

// CameraFile is one complete dashcam segment or frame (camera.file).
type CameraFile struct {
	Name          string `cbor:"name"`   // path relative to the watched directory
	Size          int64  `cbor:"size"`   // bytes
	SHA256        []byte `cbor:"sha256"` // of the whole file, streamed
	MTimeUnixNano int64  `cbor:"mtime"`
}

// Counter is synthetic load: a sequence number from the simulated source.
type Counter struct {
	N uint64 `cbor:"n"`
}

// VehicleOBD is one OBD-II sample (vehicle.obd): the configured mode 01 PIDs
// the car answered, converted with the SAE J1979 formulas. A nil field is a
// PID the car does not offer or did not answer this time (NO DATA), which a
// verifier must not read as zero.
type VehicleOBD struct {
	Protocol   string   `cbor:"proto"`               // ELM327 AT DPN: "A6" = auto, ISO 15765-4 CAN 11/500
	SpeedKmh   *float64 `cbor:"speed_kmh,omitempty"` // PID 0D: A km/h
	RPM        *float64 `cbor:"rpm,omitempty"`       // PID 0C: (256A+B)/4 rpm
	CoolantC   *float64 `cbor:"coolant_c,omitempty"` // PID 05: A-40 °C
	FuelPct    *float64 `cbor:"fuel_pct,omitempty"`  // PID 2F: 100A/255 %
	OdometerKm *float64 `cbor:"odo_km,omitempty"`    // PID A6: (A<<24|B<<16|C<<8|D)/10 km
}

// VehicleVIN is the vehicle identification number read once per boot
// (vehicle.vin, mode 09 PID 02). Exactly one of VIN and SHA256 is set: with
// vin_hash the owner signs only the SHA-256 of the 17 characters.
type VehicleVIN struct {
	VIN    string `cbor:"vin,omitempty"`
	SHA256 []byte `cbor:"vin_sha256,omitempty"`
}

// VehicleDTC lists the stored diagnostic trouble codes (vehicle.dtc, mode
// 03) as SAE J2012 strings ("P0133"); an empty list means none are stored.
type VehicleDTC struct {
	Codes []string `cbor:"codes"`
}

// EnergySample is one poll of an energy meter or inverter (energy.sample).
// The cumulative counters are signed exactly as the device reported them;
// Flags says when one went backwards or rose faster than the device's rated
// power allows, so a verifier can refuse the interval instead of the agent
// smoothing it.
type EnergySample struct {
	Profile  string   `cbor:"profile"`             // sdm120, sdm630, sunspec
	Model    uint16   `cbor:"model,omitempty"`     // SunSpec model id (101, 103, 201…)
	ImportWh *float64 `cbor:"import_wh,omitempty"` // cumulative energy drawn from the grid
	ExportWh *float64 `cbor:"export_wh,omitempty"` // cumulative energy delivered (an inverter's lifetime yield)
	PowerW   float64  `cbor:"power_w"`             // active power, total of all phases
	VoltageV float64  `cbor:"voltage_v"`           // line to neutral (average of the phases)
	CurrentA float64  `cbor:"current_a"`           // total of the phases
	FreqHz   float64  `cbor:"freq_hz"`
	// Flags: "import_back", "export_back" (lower than the last poll),
	// "import_jump", "export_jump" (more than rated power × elapsed time).
	Flags []string `cbor:"flags,omitempty"`
}
