package doctor_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/edge-agent/edge-agent/doctor"
)

// TestDaemonDownListensToTheReceiver: with the daemon down, doctor reads the
// serial receiver (a real pty) and fails one at the wrong baud rate or
// without checksums, instead of saying "present".
func TestDaemonDownListensToTheReceiver(t *testing.T) {
	sum := func(body string) string {
		var c byte
		for i := 0; i < len(body); i++ {
			c ^= body[i]
		}
		return fmt.Sprintf("$%s*%02X\r\n", body, c)
	}
	gga := "GPGGA,140000.00,5231.20040,N,01324.29724,E,1,08,1.0,34.5,M,44.9,M,,"
	tests := []struct {
		name, sends string
		level       doctor.Level
		msg         string
	}{
		{"good", sum(gga), doctor.OK, "sends usable data"},
		// 9600-baud NMEA read at 4800 looks like this: bytes, never a line.
		{"wrong baud", "\xe6\x9e\x86\xf8\x1e\xe0\x98\x06\x78\xe6\x80\x9e\xf8\x06\x86\x1e", doctor.Fail, "check the baud rate"},
		{"no checksums", "$" + gga + "\r\n", doctor.Fail, `checksum = "optional"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			master, slave, err := pty.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer master.Close()
			defer slave.Close()
			b := newBox(t)
			data, _ := os.ReadFile(b.cfgPath)
			writeFile(t, b.cfgPath, string(data)+fmt.Sprintf("[[drivers.gnss]]\nname = \"gps0\"\ndevice = %q\n", slave.Name()))
			s := b.setup(t)
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for {
					master.Write([]byte(tt.sends))
					select {
					case <-stop:
						return
					case <-time.After(200 * time.Millisecond):
					}
				}
			}()
			r := b.diagnose(t, s)
			res := result(t, r, "gps0 device")
			if res.Level != tt.level || !strings.Contains(res.Message, tt.msg) {
				t.Errorf("gps0 device: %v %q, want %v containing %q", res.Level, res.Message, tt.level, tt.msg)
			}
		})
	}
}
