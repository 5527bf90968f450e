package energy

import (
	"bytes"
	"testing"
)

// FuzzRTUDecode feeds arbitrary frames through the RTU and PDU decoders:
// they must not panic, must accept only frames whose CRC matches, and a
// frame built by rtuFrame must decode to its own PDU.
func FuzzRTUDecode(f *testing.F) {
	f.Add(byte(1), []byte{0x01, 0x04, 0x04, 0x43, 0x66, 0x80, 0x00, 0x00, 0x00})
	f.Add(byte(1), []byte{0x01, 0x84, 0x02, 0xC2, 0xC1})
	f.Add(byte(7), []byte{0x07, 0x03, 0x02, 0x53, 0x75})
	f.Fuzz(func(t *testing.T, slave byte, frame []byte) {
		if pdu, err := rtuDecode(slave, frame); err == nil {
			if crc16(frame[:len(frame)-2]) != uint16(frame[len(frame)-2])|uint16(frame[len(frame)-1])<<8 {
				t.Fatal("accepted a frame with a bad CRC")
			}
			for _, fn := range []byte{fnReadHolding, fnReadInput} {
				if len(pdu) > 1 {
					if regs, err := decodeResponse(fn, uint16(pdu[1])/2, pdu); err == nil && 2*len(regs)+2 != len(pdu) {
						t.Fatalf("%d registers from a %d-byte PDU", len(regs), len(pdu))
					}
				}
			}
		}
		if len(frame) > 0 {
			got, err := rtuDecode(slave, rtuFrame(slave, frame))
			if err != nil || !bytes.Equal(got, frame) {
				t.Fatalf("round trip: % x → % x, %v", frame, got, err)
			}
		}
	})
}
