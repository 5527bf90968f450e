package obd

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Reply statuses: what the ELM327 printed instead of data (datasheet,
// "Messages and error codes"). They are also the keys of Stats.Quirks.
const (
	statusNoData    = "no_data"           // NO DATA: the car did not answer this PID
	statusUnable    = "unable_to_connect" // UNABLE TO CONNECT: no protocol found (ignition off)
	statusBusInit   = "bus_init_error"    // BUS INIT: ...ERROR (ISO 9141/14230 wake-up failed)
	statusUnknown   = "unknown_command"   // ?: the adapter does not know the command (clones lack some AT commands)
	statusCANError  = "can_error"         // CAN ERROR: the bus is silent or the wrong speed
	statusBusError  = "bus_error"         // BUS ERROR / BUS BUSY / DATA ERROR / <RX ERROR / BUFFER FULL / FB ERROR
	statusStopped   = "stopped"           // STOPPED: our next byte interrupted a search
	quirkEcho       = "echo"              // the command came back: echo left on despite AT E0
	quirkSearching  = "searching"         // SEARCHING...: protocol auto-detection ran
	quirkNoPrompt   = "no_prompt"         // the reply ended without the > prompt
	quirkGarbage    = "garbage"           // unreadable bytes: usually the wrong baud rate
	quirkBaudChange = "baud_fallback"     // the adapter answered only at the other baud rate
	quirkTimeout    = "timeout"           // nothing at all came back
)

// reply is one parsed ELM327 response: its text lines (data or adapter
// text) without the echo, SEARCHING... and blank lines.
type reply struct {
	lines     []string
	status    string // "" or one of the status… constants
	echo      bool
	searching bool
}

// parseReply splits what the adapter printed after cmd (up to, not
// including, the > prompt). Lines are separated by CR (the adapter's
// default) or, with AT L1 left on, CR LF. It fails only on bytes no ELM327
// prints, which is what a wrong baud rate produces.
func parseReply(cmd string, raw []byte) (reply, error) {
	var r reply
	want := strings.ToUpper(strings.ReplaceAll(cmd, " ", ""))
	for _, b := range raw {
		if b >= 0x80 || (b < 0x20 && b != '\r' && b != '\n' && b != '\t' && b != 0) {
			return r, fmt.Errorf("obd: reply to %s: byte %#x: %w", cmd, b, ErrGarbage)
		}
	}
	for _, f := range bytes.FieldsFunc(raw, func(c rune) bool { return c == '\r' || c == '\n' }) {
		line := strings.TrimSpace(string(bytes.ReplaceAll(f, []byte{0}, nil)))
		up := strings.ToUpper(line)
		switch {
		case line == "":
			continue
		case want != "" && strings.ReplaceAll(up, " ", "") == want && !r.echo && len(r.lines) == 0:
			r.echo = true
			continue
		case strings.HasPrefix(up, "SEARCHING"):
			r.searching = true
			continue
		case up == "NO DATA":
			r.status = statusNoData
		case up == "?":
			r.status = statusUnknown
		case strings.HasPrefix(up, "UNABLE TO CONNECT"):
			r.status = statusUnable
		case strings.HasPrefix(up, "BUS INIT"):
			// "BUS INIT: ...ERROR", or "BUS INIT: ...OK" followed by data.
			if strings.HasSuffix(up, "ERROR") {
				r.status = statusBusInit
			}
			continue
		case strings.HasPrefix(up, "CAN ERROR"):
			r.status = statusCANError
		case up == "STOPPED":
			r.status = statusStopped
		case strings.HasPrefix(up, "BUS ERROR"), strings.HasPrefix(up, "BUS BUSY"), strings.HasPrefix(up, "DATA ERROR"),
			strings.HasPrefix(up, "<RX ERROR"), strings.HasPrefix(up, "BUFFER FULL"), strings.HasPrefix(up, "FB ERROR"),
			strings.HasPrefix(up, "ERR"):
			r.status = statusBusError
		default:
			r.lines = append(r.lines, line)
		}
	}
	return r, nil
}

// frame is one line of data bytes, with the ISO 15765 multi-frame index the
// adapter prints ("0: 49 02 01 …") when headers are off, or -1.
type frame struct {
	index int
	data  []byte
}

// frames decodes the reply's hex lines. A lone three-hex-digit line is the
// byte count the adapter prints before a CAN multi-frame reply; it is
// skipped. Lines that are not hex are an error.
func (r reply) frames() ([]frame, error) {
	var out []frame
	for _, l := range r.lines {
		fr := frame{index: -1}
		if i := strings.IndexByte(l, ':'); i > 0 && i <= 2 {
			n, err := strconv.ParseUint(l[:i], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("obd: line %q: %w", l, ErrMalformed)
			}
			fr.index, l = int(n), l[i+1:]
		}
		h := strings.ReplaceAll(l, " ", "")
		if fr.index < 0 && len(h) == 3 && len(r.lines) > 1 {
			continue // CAN byte count, e.g. "014"
		}
		if len(h)%2 != 0 {
			return nil, fmt.Errorf("obd: line %q: odd number of hex digits: %w", l, ErrMalformed)
		}
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("obd: line %q: %w", l, ErrMalformed)
		}
		fr.data = b
		out = append(out, fr)
	}
	return out, nil
}

// mode01 returns the data bytes of the first line answering mode 01 pid
// ("41 pid A B …"), and the OR of every ECU's bytes for the supported-PID
// bitmaps (PIDs 00, 20, 40 …), where each ECU lists its own.
func mode01(fs []frame, pid byte) ([]byte, bool) {
	var out []byte
	for _, f := range fs {
		if len(f.data) < 3 || f.data[0] != 0x41 || f.data[1] != pid {
			continue
		}
		if out == nil {
			out = append([]byte(nil), f.data[2:]...)
			if pid%0x20 != 0 {
				return out, true
			}
			continue
		}
		for i := 0; i < len(out) && i+2 < len(f.data); i++ {
			out[i] |= f.data[i+2]
		}
	}
	return out, out != nil
}

// multiFrame joins a reply that may span several lines: CAN replies carry
// the service byte once ("0: 49 02 01 …", "1: …"); older protocols repeat
// the service, PID and a line counter on each line ("49 02 01 …", "49 02 02
// …"). It returns the payload after the service and PID bytes.
func multiFrame(fs []frame, service, pid byte) []byte {
	var out []byte
	can := len(fs) > 0 && fs[0].index >= 0
	for _, f := range fs {
		d := f.data
		switch {
		case can:
			out = append(out, d...)
		case len(d) >= 3 && d[0] == service && d[1] == pid:
			out = append(out, d[3:]...) // service, PID, line number
		}
	}
	if can {
		if len(out) < 2 || out[0] != service || out[1] != pid {
			return nil
		}
		return out[2:]
	}
	return out
}

// parseVIN extracts the 17-character VIN from a mode 09 PID 02 reply. CAN
// cars put a data-item count (01) before it and some pad with zeros, so the
// VIN is the last 17 printable characters.
func parseVIN(fs []frame) (string, error) {
	p := multiFrame(fs, 0x49, 0x02)
	var b []byte
	for _, c := range p {
		if c >= '0' && c <= 'Z' && c != 'I' && c != 'O' && c != 'Q' && (c <= '9' || c >= 'A') {
			b = append(b, c)
		}
	}
	if len(b) < 17 {
		return "", fmt.Errorf("obd: VIN reply has %d usable characters, want 17: %w", len(b), ErrMalformed)
	}
	return string(b[len(b)-17:]), nil
}

// parseDTCs decodes a mode 03 reply into SAE J2012 codes. On CAN the first
// byte after 43 is the number of codes; older protocols send three code
// slots per line, zero-padded.
func parseDTCs(fs []frame, can bool) ([]string, error) {
	var raw []byte
	if can {
		var all []byte
		for _, f := range fs {
			all = append(all, f.data...)
		}
		// Each ECU answers in its own message; with headers off single
		// frames start with 43 each.
		for len(all) >= 2 && all[0] == 0x43 {
			n := int(all[1])
			if 2+2*n > len(all) {
				return nil, fmt.Errorf("obd: DTC reply says %d codes in %d bytes: %w", n, len(all)-2, ErrMalformed)
			}
			raw = append(raw, all[2:2+2*n]...)
			all = all[2+2*n:]
		}
	} else {
		for _, f := range fs {
			if len(f.data) >= 1 && f.data[0] == 0x43 {
				raw = append(raw, f.data[1:]...)
			}
		}
	}
	codes := []string{}
	for i := 0; i+1 < len(raw); i += 2 {
		if raw[i] == 0 && raw[i+1] == 0 {
			continue // padding
		}
		codes = append(codes, dtcString(raw[i], raw[i+1]))
	}
	return codes, nil
}

// dtcString formats two DTC bytes: the top two bits are the system (P
// powertrain, C chassis, B body, U network), then four hex digits.
func dtcString(a, b byte) string {
	return fmt.Sprintf("%c%d%X%02X", "PCBU"[a>>6], (a>>4)&3, a&0xF, b)
}

// isCAN reports whether an AT DPN answer ("6", "A6") names an ISO 15765-4
// or J1939 protocol, whose replies carry a code count and multi-frame
// indices.
func isCAN(dpn string) bool {
	p := strings.TrimPrefix(strings.ToUpper(dpn), "A")
	return len(p) == 1 && strings.Contains("6789ABC", p)
}
