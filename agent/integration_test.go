package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/store"
)

// nmeaSentence adds the $ and the checksum to body.
func nmeaSentence(body string) string {
	var sum byte
	for i := 0; i < len(body); i++ {
		sum ^= body[i]
	}
	return fmt.Sprintf("$%s*%02X\r\n", body, sum)
}

// TestDaemonStampsGNSSPositionFromASerialReceiver runs the daemon with the
// real GNSS driver reading a pseudo-terminal, as it would a receiver's UART,
// and a simulated LoRa source: LoRa records must carry the receiver's
// position, to full precision, in their location stamp.
func TestDaemonStampsGNSSPositionFromASerialReceiver(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	defer master.Close()
	defer slave.Close()

	dir := t.TempDir()
	cfg := configIn(dir)
	cfg.Drivers.GNSS = []config.GNSS{{Name: "gps0", Source: "serial", Device: slave.Name(), Baud: 9600, Interval: config.D(0)}}
	cfg.Drivers.Sim = []config.Sim{{Name: "lora0", Kind: "lora", Interval: config.D(50 * time.Millisecond)}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Config: &cfg, CreateKey: true, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	// 4807.038247,N 01131.000123,E is 48.1173041166…°, 11.51666871666…°.
	wantLat := 48 + 7.038247/60
	wantLon := 11 + 31.000123/60
	// Feed one epoch per second of wall time, as a receiver prints them,
	// until the daemon has turned three into fixes and then signed 20 more
	// records (the shutdown commits them): the loop waits for what the
	// checks below need, so a loaded machine makes it slower, never wrong.
	// The deadline only stops a stuck daemon.
	fixes := func() uint64 {
		doc, err := a.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range doc.Drivers {
			if d.GNSS != nil {
				return d.GNSS.Fixes
			}
		}
		return 0
	}
	deadline := time.Now().Add(2 * time.Minute)
	lastHMS, signedAtFixes := "", uint64(0)
	for signedAtFixes == 0 || a.Snapshot().Signed < signedAtFixes+20 {
		if time.Now().After(deadline) {
			t.Fatalf("after 2 minutes: %d fixes, %d records signed; want 3 fixes and then 20 more records", fixes(), a.Snapshot().Signed)
		}
		now := time.Now().UTC()
		if hms := now.Format("150405") + ".00"; hms != lastHMS { // each second once
			lastHMS = hms
			dmy := now.Format("020106")
			epoch := nmeaSentence("GPRMC,"+hms+",A,4807.038247,N,01131.000123,E,022.4,084.4,"+dmy+",,,A") +
				nmeaSentence("GPGGA,"+hms+",4807.038247,N,01131.000123,E,1,08,0.9,545.4,M,46.9,M,,") +
				nmeaSentence("GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,0.9,2.1")
			if _, err := master.Write([]byte(epoch)); err != nil {
				t.Fatal(err)
			}
		}
		if signedAtFixes == 0 && fixes() >= 3 {
			signedAtFixes = a.Snapshot().Signed
		}
		time.Sleep(50 * time.Millisecond) // polling the conditions above
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	st, err := store.Open(cfg.Store.Path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// LoRa records signed before the first fix carry no position, and how
	// many there are depends on how fast the daemon started; count from the
	// first fix on.
	var nFixes, stamped, lora int
	err = st.Records(func(r store.Record) error {
		rec, err := attest.Decode(r.Data)
		if err != nil {
			return err
		}
		if err := rec.Verify(); err != nil {
			return err
		}
		switch rec.Claims.Kind {
		case drivers.KindGNSSFix:
			nFixes++
		case drivers.KindLoRaRX:
			if nFixes == 0 {
				return nil
			}
			lora++
			if l := rec.Claims.Loc; l != nil {
				stamped++
				if math.Abs(l.Lat-wantLat) > 1e-12 || math.Abs(l.Lon-wantLon) > 1e-12 || l.Mode != 3 || l.Sats == nil || *l.Sats != 8 || l.AltMSL == nil || *l.AltMSL != 545.4 {
					return fmt.Errorf("seq %d: location %s, want %.12f,%.12f 3D 8 sats 545.4 m", r.Seq, locString(l), wantLat, wantLon)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if nFixes < 3 || lora < 10 || stamped < lora/2 {
		t.Fatalf("%d gnss.fix records, %d lora.rx after the first of which %d carry a position; want fixes and most LoRa records stamped", nFixes, lora, stamped)
	}
}

func locString(l *attest.Location) string {
	b, _ := json.Marshal(l)
	return string(b)
}
