package doctor

import (
	"fmt"
	"sort"
	"strings"

	"github.com/edge-agent/edge-agent/status"
)

// obdVerdict judges an ELM327 adapter: ignition off is normal; a silent or
// unreadable adapter is the baud rate or the link; clone quirks are listed.
func obdVerdict(doc *status.Doc, d status.Driver) (Level, string, string) {
	o := d.OBD
	switch o.State {
	case "disconnected":
		hint := "plug the adapter in (or bind the Bluetooth port with rfcomm) and check the device path"
		switch {
		case o.Quirks["garbage"] > 0:
			hint = "the adapter answers unreadable bytes: set baud to the adapter's rate (38400 for an ELM327, 9600 for many clones)"
		case o.Adapter != "":
			hint = "the adapter answered before and went away: check the cable, or the car's OBD socket power"
		}
		reason := o.LastError
		if reason == "" {
			reason = "no ELM327 answered yet"
		}
		return Fail, "OBD adapter disconnected: " + reason, hint
	case "no_vehicle":
		return OK, fmt.Sprintf("%s at %d baud answers; the car does not (ignition off): normal, polled again by itself%s", o.Adapter, o.Baud, quirkList(o.Quirks)),
			""
	}
	msg := fmt.Sprintf("%s at %d baud, protocol %s, %d samples, last %s, PIDs %s%s", o.Adapter, o.Baud, o.Protocol, o.Samples,
		ago(doc, o.LastAt), strings.Join(o.Offered, ","), quirkList(o.Quirks))
	if o.Quirks["garbage"]+o.Quirks["timeout"] > o.Samples/10+3 {
		return Warn, msg, "many unreadable or missing replies: a noisy Bluetooth link or a poor clone; try a wired adapter"
	}
	return OK, msg, ""
}

// quirkList is ", quirks: echo 3, no_prompt 40" or "".
func quirkList(q map[string]uint64) string {
	var parts []string
	for k, v := range q {
		if v > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, v))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	sort.Strings(parts)
	return ", quirks: " + strings.Join(parts, ", ")
}

// energyVerdict names the next step for each failure of a Modbus poll.
func energyVerdict(doc *status.Doc, d status.Driver) (Level, string, string) {
	e := d.Energy
	errs := fmt.Sprintf("timeouts %d, crc errors %d, exceptions %d", e.Errors["timeout"], e.Errors["crc"], e.Errors["exception"])
	if !e.Connected {
		hint := "`journalctl -u edge-agent` has the details"
		switch {
		case e.Errors["exception"] > 0:
			hint = "the device refuses these registers: the profile does not match the device (sdm120, sdm630 or sunspec)"
		case e.Errors["crc"] > 0:
			hint = "garbled frames: the baud rate or parity differs from the meter's menu, or the line lacks its 120 Ω terminator"
		case e.Errors["timeout"] > 0:
			hint = "no answer: check the slave id, baud rate and parity against the meter's menu; on RS-485 swap the A and B wires"
		case strings.Contains(e.LastError, "not found"):
			hint = "plug the RS-485 adapter in, or check the Modbus TCP address"
		}
		return Fail, "meter not answering (" + errs + "): " + e.LastError, hint
	}
	msg := fmt.Sprintf("%s%s, %d polls, last %s, %.0f W (%s)", e.Profile, model(e.Model), e.Polls, ago(doc, e.LastAt), e.PowerW, errs)
	if n := e.Flags["import_back"] + e.Flags["export_back"] + e.Flags["import_jump"] + e.Flags["export_jump"]; n > 0 {
		return Warn, msg + fmt.Sprintf(", %d samples flagged (counter back or beyond the rated power)", n),
			"a meter reset, swap or a wrong max_power_w: the records are signed as read and flagged; check the meter"
	}
	return OK, msg, ""
}

func model(m uint16) string {
	if m == 0 {
		return ""
	}
	return fmt.Sprintf(" model %d", m)
}
