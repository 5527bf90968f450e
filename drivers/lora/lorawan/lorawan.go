// Package lorawan reads the few header fields of a LoRaWAN 1.0.x PHY payload
// that a witness records: the message type (MHDR), and for data frames the
// device address and frame counter (FHDR). It does not check the MIC or
// decrypt anything; it has no keys.
//
// Concurrency: the package holds no state and is safe for concurrent use.
package lorawan

import (
	"encoding/binary"
	"fmt"
)

// MType names, as drivers/sim and the lora.rx "mtype" field spell them
// (LoRaWAN 1.0.4 §4.2.1, table 3; RejoinRequest is 1.1's use of 110).
const (
	JoinRequest         = "JoinRequest"
	JoinAccept          = "JoinAccept"
	UnconfirmedDataUp   = "UnconfirmedDataUp"
	UnconfirmedDataDown = "UnconfirmedDataDown"
	ConfirmedDataUp     = "ConfirmedDataUp"
	ConfirmedDataDown   = "ConfirmedDataDown"
	RejoinRequest       = "RejoinRequest"
	Proprietary         = "Proprietary"
)

var mtypes = [8]string{
	JoinRequest, JoinAccept, UnconfirmedDataUp, UnconfirmedDataDown,
	ConfirmedDataUp, ConfirmedDataDown, RejoinRequest, Proprietary,
}

// Header is what Parse could read. For data frames HasFHDR is true and
// DevAddr and FCnt are set.
type Header struct {
	MType   string
	DevAddr uint32 // as a number; the wire order is little-endian
	FCnt    uint16 // the 16 bits on air (§4.3.1.5); the device's 32-bit counter is not sent
	FOpts   int    // FOptsLen, 0..15
	HasFHDR bool
	// FPort is the port byte after the FHDR, nil when the frame has no
	// FRMPayload (§4.3.2: the port is then absent).
	FPort *uint8
}

// DevAddrString returns DevAddr as 8 upper-case hex digits, most significant
// first, the way network servers print it.
func (h Header) DevAddrString() string { return fmt.Sprintf("%08X", h.DevAddr) }

// Minimum sizes (§4: MHDR 1, MIC 4; FHDR 7 + FOpts; join request §6.2.4: 23;
// join accept §6.2.5: 17 or 33).
const (
	micLen        = 4
	minDataFrame  = 1 + 7 + micLen
	joinRequest   = 23
	joinAccept    = 17
	joinAcceptCF  = 33
	majorLoRaWAN1 = 0
)

// Parse reads the MHDR and, for data frames, the FHDR. ok is false when the
// payload is not a plausible LoRaWAN R1 frame (wrong major version, a length
// no frame of that type can have): the caller then records it as opaque
// bytes, since other networks and proprietary traffic share the band.
func Parse(phy []byte) (h Header, ok bool) {
	if len(phy) < 1+micLen {
		return h, false
	}
	mhdr := phy[0]
	if mhdr&0x03 != majorLoRaWAN1 {
		return h, false
	}
	h.MType = mtypes[mhdr>>5]
	switch mhdr >> 5 {
	case 0: // join request
		if len(phy) != joinRequest {
			return Header{}, false
		}
	case 1: // join accept: encrypted, only the length can be checked
		if len(phy) != joinAccept && len(phy) != joinAcceptCF {
			return Header{}, false
		}
	case 2, 3, 4, 5:
		if len(phy) < minDataFrame {
			return Header{}, false
		}
		fctrl := phy[5]
		h.FOpts = int(fctrl & 0x0f)
		if len(phy) < minDataFrame+h.FOpts {
			return Header{}, false
		}
		h.DevAddr = binary.LittleEndian.Uint32(phy[1:5])
		h.FCnt = binary.LittleEndian.Uint16(phy[6:8])
		h.HasFHDR = true
		if i := 1 + 7 + h.FOpts; len(phy) > i+micLen {
			port := phy[i]
			h.FPort = &port
		}
	case 6: // rejoin request (1.1): type 0/2 are 19 bytes, type 1 is 24
		if len(phy) != 19 && len(phy) != 24 {
			return Header{}, false
		}
	}
	return h, true
}
