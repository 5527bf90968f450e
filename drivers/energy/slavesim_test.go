package energy

import (
	"encoding/binary"
	"io"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// slave is a Modbus slave of our own, serving register maps over RTU (the
// master side of a pty) or TCP (loopback), with the faults of a real bus.
type slave struct {
	mu      sync.Mutex
	id      byte
	input   map[uint16]uint16
	holding map[uint16]uint16
	badCRC  int  // corrupt the CRC of the next n answers
	silent  bool // answer nothing (a dead or mis-wired slave)
	baud    int  // RTU: pace bytes at 11 bits each; 0 = as fast as the pty goes
}

func newSlave(id byte) *slave {
	return &slave{id: id, input: map[uint16]uint16{}, holding: map[uint16]uint16{}}
}

func (s *slave) setFloat(addr uint16, v float32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := math.Float32bits(v)
	s.input[addr], s.input[addr+1] = uint16(b>>16), uint16(b)
}

func (s *slave) setHolding(addr uint16, vals ...uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, v := range vals {
		s.holding[addr+uint16(i)] = v
	}
}

// handle answers one request PDU per the Modbus application protocol:
// exception 1 for other functions, 3 for a bad quantity, 2 for an address
// outside the map.
func (s *slave) handle(pdu []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(pdu) != 5 {
		return []byte{pdu[0] | 0x80, 3}
	}
	fn := pdu[0]
	addr, qty := binary.BigEndian.Uint16(pdu[1:]), binary.BigEndian.Uint16(pdu[3:])
	var m map[uint16]uint16
	switch fn {
	case fnReadHolding:
		m = s.holding
	case fnReadInput:
		m = s.input
	default:
		return []byte{fn | 0x80, 1}
	}
	if qty == 0 || qty > maxRegs {
		return []byte{fn | 0x80, 3}
	}
	out := []byte{fn, byte(2 * qty)}
	for i := uint16(0); i < qty; i++ {
		v, ok := m[addr+i]
		if !ok {
			return []byte{fn | 0x80, 2}
		}
		out = binary.BigEndian.AppendUint16(out, v)
	}
	return out
}

// serveRTU returns the path of a pty whose other end is the slave.
func serveRTU(tb testing.TB, s *slave) string {
	tb.Helper()
	m, sl, err := pty.Open()
	if err != nil {
		tb.Fatal(err)
	}
	if t, err := unix.IoctlGetTermios(int(sl.Fd()), unix.TCGETS); err == nil {
		t.Iflag &^= unix.ICRNL | unix.INLCR | unix.IGNCR | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG | unix.IEXTEN
		unix.IoctlSetTermios(int(sl.Fd()), unix.TCSETS, t)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		req := make([]byte, 8) // functions 3 and 4: slave, fn, addr, qty, CRC
		for {
			if _, err := io.ReadFull(m, req); err != nil {
				return
			}
			s.mu.Lock()
			silent, id, baud := s.silent, s.id, s.baud
			s.mu.Unlock()
			pdu, err := rtuDecode(req[0], req)
			if err != nil || req[0] != id || silent {
				continue // a slave ignores frames with a bad CRC and other slaves' frames
			}
			resp := rtuFrame(id, s.handle(pdu))
			s.mu.Lock()
			if s.badCRC > 0 {
				s.badCRC--
				resp[len(resp)-1] ^= 0x5A
			}
			s.mu.Unlock()
			if baud > 0 {
				time.Sleep(time.Duration(len(req)+len(resp)) * 11 * time.Second / time.Duration(baud))
			}
			if _, err := m.Write(resp); err != nil {
				return
			}
		}
	}()
	tb.Cleanup(func() { m.Close(); sl.Close(); <-done })
	return sl.Name()
}

// serveTCP returns the loopback address of a Modbus TCP server for s.
func serveTCP(tb testing.TB, s *slave) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				for {
					var hdr [7]byte
					if _, err := io.ReadFull(c, hdr[:]); err != nil {
						return
					}
					body := make([]byte, binary.BigEndian.Uint16(hdr[4:])-1)
					if _, err := io.ReadFull(c, body); err != nil {
						return
					}
					s.mu.Lock()
					silent, id := s.silent, s.id
					s.mu.Unlock()
					if silent || hdr[6] != id {
						continue
					}
					pdu := s.handle(body)
					resp := append(hdr[:4:4], byte((len(pdu)+1)>>8), byte(len(pdu)+1), hdr[6])
					if _, err := c.Write(append(resp, pdu...)); err != nil {
						return
					}
				}
			}()
		}
	}()
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// sdm630 fills s with an SDM630's input registers: 230.5 V, 12.25 A,
// 2824 W, 50 Hz, import 1234.5 kWh, export 10.25 kWh.
func sdm630(s *slave) {
	for a := uint16(0); a < sdm630LowRegs; a++ {
		s.input[a] = 0
	}
	s.setFloat(sdmVoltsAvg, 230.5)
	s.setFloat(sdmCurrentSum, 12.25)
	s.setFloat(sdmPowerTotal, 2824)
	s.setFloat(sdmVoltsL1, 229)
	s.setFloat(sdmFrequency, 50)
	s.setFloat(sdmImportKWh, 1234.5)
	s.setFloat(sdmExportKWh, 10.25)
}

// sunspec fills s with a SunSpec map at 40000: "SunS", common model 1
// (L 66), then model id with its registers, then the end marker.
func sunspec(s *slave, id uint16, body []uint16) {
	common := make([]uint16, 66)
	copy(common, []uint16{0x4564, 0x6765}) // Mn "Edge"
	regs := append([]uint16{sunsMarkerHigh, sunsMarkerLow, 1, 66}, common...)
	regs = append(regs, id, uint16(len(body)))
	regs = append(regs, body...)
	regs = append(regs, 0xFFFF, 0)
	s.setHolding(40000, regs...)
}

// inverter103 is a three-phase inverter block (L 50): 21.3 A (A_SF -1),
// 231/232/233 V, 4810 W, 50.01 Hz (Hz_SF -2), lifetime 12.345 MWh (WH_SF 1).
func inverter103() []uint16 {
	b := make([]uint16, 50)
	set := func(off int, v uint16) { b[off-2] = v }
	set(2, 213)
	set(6, 0xFFFF) // -1
	set(10, 231)
	set(11, 232)
	set(12, 233)
	set(13, 0)
	set(14, 4810)
	set(15, 0)
	set(16, 5001)
	set(17, 0xFFFE) // -2
	set(24, 123450>>16)
	set(25, 123450&0xFFFF)
	set(26, 1)
	return b
}

// meter203 is a three-phase meter block (L 105): 15 A, 230 V, 49.98 Hz,
// -3450 W (exporting), export 5.5 MWh, import 7.25 MWh (TotWh_SF 0).
func meter203() []uint16 {
	b := make([]uint16, 105)
	set := func(off int, v uint16) { b[off-2] = v }
	set(2, 150)
	set(6, 0xFFFF)
	set(7, 230)
	set(16, 4998)
	set(17, 0xFFFE)
	set(18, uint16(0x10000-3450))
	set(38, 5500000>>16)
	set(39, 5500000&0xFFFF)
	set(46, 7250000>>16)
	set(47, 7250000&0xFFFF)
	return b
}
