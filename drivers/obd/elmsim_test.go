package obd

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// car is what answers behind the simulated adapter.
type car struct {
	mu      sync.Mutex
	off     bool            // ignition off: nothing answers
	kline   bool            // ISO 9141 car: a failed search says BUS INIT: ...ERROR
	pids    map[byte][]byte // mode 01 PIDs it answers, with their data bytes
	offered map[byte]bool   // PIDs its bitmaps list (a superset: some say NO DATA)
	vin     string
	dtcs    [][2]byte
}

func (c *car) setOff(off bool) {
	c.mu.Lock()
	c.off = off
	c.mu.Unlock()
}

// clone is how the simulated adapter misbehaves.
type clone struct {
	baud        int  // the only rate it answers at (pty termios says what the driver set)
	echoStuck   bool // ignores AT E0
	noPrompt    bool // never prints >
	noS0H0      bool // answers ? to AT S0 and AT H0
	pace        bool // sleep 10 bits per byte at the baud rate, as a real UART would
	searchDelay time.Duration
}

// elmSim is an ELM327 (datasheet v1.4b behaviour) on the master side of a
// pty; the driver opens the slave like any USB adapter.
type elmSim struct {
	tb     testing.TB
	master *os.File
	slave  *os.File
	car    *car
	cl     clone
	done   chan struct{}

	echo, spaces, headers bool
	proto                 string // "" until a search succeeded
	last                  string
}

func newELMSim(tb testing.TB, c *car, cl clone) *elmSim {
	tb.Helper()
	m, s, err := pty.Open()
	if err != nil {
		tb.Fatalf("open pty: %v", err)
	}
	// Raw mode on the slave side so CRs pass untranslated, as on a USB UART.
	if t, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS); err == nil {
		t.Iflag &^= unix.ICRNL | unix.INLCR | unix.IGNCR
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG | unix.IEXTEN
		unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, t)
	}
	if cl.baud == 0 {
		cl.baud = 38400
	}
	e := &elmSim{tb: tb, master: m, slave: s, car: c, cl: cl, done: make(chan struct{}), echo: true, spaces: true}
	go e.serve()
	tb.Cleanup(e.unplug)
	return e
}

func (e *elmSim) path() string { return e.slave.Name() }

// unplug closes both ends, as pulling a USB adapter removes its tty.
func (e *elmSim) unplug() {
	e.master.Close()
	e.slave.Close()
	<-e.done
}

// baudOK reports whether the driver set the port to the clone's rate (the
// pty shares one termios between its ends).
func (e *elmSim) baudOK() bool {
	t, err := unix.IoctlGetTermios(int(e.master.Fd()), unix.TCGETS)
	if err != nil {
		return false
	}
	want := map[int]uint32{9600: unix.B9600, 38400: unix.B38400}[e.cl.baud]
	return t.Cflag&unix.CBAUD == want
}

func (e *elmSim) serve() {
	defer close(e.done)
	var line []byte
	buf := make([]byte, 256)
	for {
		n, err := e.master.Read(buf)
		if err != nil {
			return
		}
		for _, b := range buf[:n] {
			if b != '\r' {
				if b != '\n' && b != ' ' {
					line = append(line, b)
				}
				continue
			}
			cmd := strings.ToUpper(string(line))
			line = line[:0]
			out := e.answer(cmd)
			if e.cl.pace {
				time.Sleep(time.Duration(len(cmd)+1+len(out)) * 10 * time.Second / time.Duration(e.cl.baud))
			}
			if _, err := e.master.Write(out); err != nil {
				return
			}
		}
	}
}

// answer builds the bytes the adapter prints for one command, prompt
// included.
func (e *elmSim) answer(cmd string) []byte {
	if !e.baudOK() {
		return []byte{0xF8, 0x80, 0x00, 0xFE, 0x86} // framing errors look like this
	}
	var b bytes.Buffer
	if cmd == "" {
		cmd = e.last // a lone CR repeats the last command
		if cmd == "" {
			b.WriteString(">")
			return b.Bytes()
		}
	}
	if e.echo {
		b.WriteString(cmd + "\r")
	}
	body := e.body(cmd)
	if !strings.HasPrefix(cmd, "AT") {
		e.last = cmd
	}
	b.WriteString(body)
	b.WriteString("\r\r")
	if !e.cl.noPrompt {
		b.WriteString(">")
	}
	return b.Bytes()
}

func (e *elmSim) hex(bs ...byte) string {
	var parts []string
	for _, x := range bs {
		parts = append(parts, fmt.Sprintf("%02X", x))
	}
	if e.spaces {
		return strings.Join(parts, " ")
	}
	return strings.Join(parts, "")
}

func (e *elmSim) body(cmd string) string {
	switch cmd {
	case "ATZ":
		e.echo, e.spaces, e.headers, e.proto = true, true, false, ""
		return "\rELM327 v1.5"
	case "ATE0":
		if !e.cl.echoStuck {
			e.echo = false
		}
		return "OK"
	case "ATS0", "ATH0":
		if e.cl.noS0H0 {
			return "?"
		}
		if cmd == "ATS0" {
			e.spaces = false
		}
		return "OK"
	case "ATL0", "ATSP0":
		e.proto = ""
		return "OK"
	case "ATDPN":
		if e.proto == "" {
			return "A0"
		}
		return "A" + e.proto
	}
	if strings.HasPrefix(cmd, "AT") {
		return "?"
	}
	c := e.car
	c.mu.Lock()
	defer c.mu.Unlock()
	prefix := ""
	if e.proto == "" {
		prefix = "SEARCHING...\r"
		time.Sleep(e.cl.searchDelay)
		if c.off {
			if c.kline {
				return prefix + "BUS INIT: ...ERROR"
			}
			return prefix + "UNABLE TO CONNECT"
		}
		e.proto = "6"
		if c.kline {
			e.proto = "3"
		}
	}
	if c.off {
		return "NO DATA"
	}
	var svc, pid byte
	if _, err := fmt.Sscanf(cmd, "%02X%02X", &svc, &pid); err != nil {
		switch cmd {
		case "03":
			return prefix + e.dtcReply()
		}
		return "?"
	}
	switch {
	case svc == 0x01 && pid%0x20 == 0:
		var bm [4]byte
		any := false
		for p := range c.offered {
			if p > pid && p <= pid+0x20 {
				i := int(p - pid - 1)
				bm[i/8] |= 0x80 >> (i % 8)
				any = true
			}
		}
		if !any && pid > 0 {
			return prefix + "NO DATA"
		}
		return prefix + e.hex(append([]byte{0x41, pid}, bm[:]...)...)
	case svc == 0x01:
		d, ok := c.pids[pid]
		if !ok {
			return prefix + "NO DATA"
		}
		return prefix + e.hex(append([]byte{0x41, pid}, d...)...)
	case svc == 0x09 && pid == 0x02:
		if c.vin == "" {
			return prefix + "NO DATA"
		}
		if c.kline { // five lines: 49 02 NN and four bytes each, zero-padded in front
			p := append([]byte{0, 0, 0}, c.vin...)
			var lines []string
			for i := 0; i < 5; i++ {
				lines = append(lines, e.hex(append([]byte{0x49, 0x02, byte(i + 1)}, p[i*4:i*4+4]...)...))
			}
			return prefix + strings.Join(lines, "\r")
		}
		p := append([]byte{0x49, 0x02, 0x01}, c.vin...) // 20 bytes: a first frame and two consecutive frames
		return prefix + fmt.Sprintf("%03X\r0: %s\r1: %s\r2: %s", len(p), e.hex(p[:6]...), e.hex(p[6:13]...), e.hex(p[13:]...))
	}
	return "?"
}

func (e *elmSim) dtcReply() string {
	c := e.car
	if c.kline {
		var out []string
		for i := 0; i == 0 || i < len(c.dtcs); i += 3 {
			line := []byte{0x43}
			for j := i; j < i+3; j++ {
				if j < len(c.dtcs) {
					line = append(line, c.dtcs[j][0], c.dtcs[j][1])
				} else {
					line = append(line, 0, 0)
				}
			}
			out = append(out, e.hex(line...))
		}
		return strings.Join(out, "\r")
	}
	line := []byte{0x43, byte(len(c.dtcs))}
	for _, d := range c.dtcs {
		line = append(line, d[0], d[1])
	}
	return e.hex(line...)
}
