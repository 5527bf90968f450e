package doctor_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/edge-agent/edge-agent/doctor"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/status/statustest"
	"github.com/edge-agent/edge-agent/store"
	"github.com/edge-agent/edge-agent/uplink/mqtt/mqtttest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestDaemonDownHealthyBox(t *testing.T) {
	b := newBox(t)
	r := b.diagnose(t, b.setup(t))
	if r.Daemon != doctor.DaemonNotRunning {
		t.Errorf("daemon = %q, want %q", r.Daemon, doctor.DaemonNotRunning)
	}
	expect(t, r, "daemon", doctor.Fail, "the daemon is not running: nothing answers on "+b.socket, "systemctl start edge-agent")
	for _, name := range []string{"config", "service user", "device key", "data dir", "filesystem", "disk space", "outbox", "clock"} {
		expect(t, r, name, doctor.OK, "", "")
	}
	if r.Verdict != doctor.Fail || r.ExitCode() != 2 {
		t.Errorf("verdict %v exit %d, want fail 2", r.Verdict, r.ExitCode())
	}
}

func TestOfflineChecks(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T, b *box, s *doctor.Setup)
		check  string
		level  doctor.Level
		msg    string
		next   string
	}{
		{"key readable by others", func(t *testing.T, b *box, s *doctor.Setup) {
			os.Chmod(filepath.Join(s.Config.Device.DataDir, "device.key"), 0o644)
		}, "device key", doctor.Fail, "mode 0644", "chmod 600"},
		{"key missing", func(t *testing.T, b *box, s *doctor.Setup) {
			os.Remove(filepath.Join(s.Config.Device.DataDir, "device.key"))
		}, "device key", doctor.Warn, "no device key", "edge-agent keys init"},
		{"key not readable by the service user", func(t *testing.T, b *box, s *doctor.Setup) {
			b.setUser(t, 1000)
		}, "device key", doctor.Fail, "user edge-agent cannot read the key", "chown edge-agent:"},
		{"config broken", func(t *testing.T, b *box, s *doctor.Setup) {
			writeFile(t, b.cfgPath, "version = 1\n[store]\nmax_byte = 5\n")
			*s = doctor.LoadSetup(b.cfgPath)
		}, "config", doctor.Fail, `unknown key "store.max_byte"`, "edge-agent config check"},
		{"config missing", func(t *testing.T, b *box, s *doctor.Setup) {
			os.Remove(b.cfgPath)
			*s = doctor.LoadSetup(b.cfgPath)
		}, "config", doctor.Fail, "does not exist", "edge-agent config default >"},
		{"no service user", func(t *testing.T, b *box, s *doctor.Setup) {
			writeFile(t, b.host.Passwd, "root:x:0:0:root:/root:/bin/sh\n")
		}, "service user", doctor.Warn, "user edge-agent does not exist", "install the edge-agent package"},
		{"device node missing", func(t *testing.T, b *box, s *doctor.Setup) {
			s.Devices = []doctor.Device{{Driver: "gps", What: "GNSS receiver", Path: filepath.Join(b.root, "dev", "ttyAMA0")}}
		}, "gps device", doctor.Fail, "GNSS receiver not found", "check the wiring"},
		{"device node in a group the user lacks", func(t *testing.T, b *box, s *doctor.Setup) {
			s.Devices = []doctor.Device{{Driver: "gps", What: "GNSS receiver", Path: deviceNode(t, b, "ttyAMA0", 20)}}
			b.setUser(t, 1000, "i2c")
		}, "gps device", doctor.Fail, "user edge-agent cannot open", "add user edge-agent to group dialout: `usermod -aG dialout edge-agent`"},
		{"device node in the user's group", func(t *testing.T, b *box, s *doctor.Setup) {
			s.Devices = []doctor.Device{{Driver: "gps", What: "GNSS receiver", Path: deviceNode(t, b, "ttyAMA0", 20)}}
			b.setUser(t, 1000, "dialout")
		}, "gps device", doctor.OK, "edge-agent may open it", ""},
		{"no node matches a driver's pattern", func(t *testing.T, b *box, s *doctor.Setup) {
			s.Devices = []doctor.Device{{Driver: "radio", What: "GPIO chip", Path: filepath.Join(b.root, "dev", "gpiochip*"), Kind: drivers.DeviceNodeReadOnly}}
		}, "radio device", doctor.Fail, "GPIO chip not found: nothing matches", "check the wiring"},
		{"read-only nodes by pattern, group-readable", func(t *testing.T, b *box, s *doctor.Setup) {
			for _, n := range []string{"gpiochip0", "gpiochip1"} {
				os.Chmod(deviceNode(t, b, n, 21), 0o640) // read is all a GPIO chip needs
			}
			s.Devices = []doctor.Device{{Driver: "radio", What: "GPIO chip", Path: filepath.Join(b.root, "dev", "gpiochip*"), Kind: drivers.DeviceNodeReadOnly}}
			b.setUser(t, 1000, "i2c") // the stand-ins are in group i2c (gid 21)
		}, "radio device", doctor.OK, "gpiochip1; edge-agent may open them", ""},
		{"a read-only node the user's group cannot read", func(t *testing.T, b *box, s *doctor.Setup) {
			s.Devices = []doctor.Device{{Driver: "radio", What: "GPIO chip", Path: deviceNode(t, b, "gpiochip0", 21), Kind: drivers.DeviceNodeReadOnly}}
			b.setUser(t, 1000, "dialout")
		}, "radio device", doctor.Fail, "user edge-agent cannot open", "usermod -aG i2c edge-agent"},
		{"data dir missing", func(t *testing.T, b *box, s *doctor.Setup) {
			s.Config.Device.DataDir = filepath.Join(b.root, "nowhere")
		}, "data dir", doctor.Warn, "does not exist yet", "install -d -o edge-agent"},
		{"data dir not writable by the service user", func(t *testing.T, b *box, s *doctor.Setup) {
			b.setUser(t, 1000)
		}, "data dir", doctor.Fail, "user edge-agent cannot write", "chown -R edge-agent:edge-agent"},
		{"read-only mount in /proc/mounts", func(t *testing.T, b *box, s *doctor.Setup) {
			writeFile(t, b.host.Mounts, "/dev/mmcblk0p2 / ext4 ro,relatime 0 0\n")
		}, "filesystem", doctor.Fail, "mounted read-only (/dev/mmcblk0p2 on /)", "replace the card"},
		{"disk nearly full", func(t *testing.T, b *box, s *doctor.Setup) {
			b.host.Statfs = func(p string) (status.Disk, error) {
				return status.Disk{Path: p, FreeBytes: 40 << 20, TotalBytes: 29 << 30}, nil
			}
		}, "disk space", doctor.Fail, "40.0 MiB free of 29.0 GiB", "free space"},
		{"clock not set", func(t *testing.T, b *box, s *doctor.Setup) {
			b.host.Now = func() time.Time { return time.Date(1970, 1, 1, 0, 1, 0, 0, time.UTC) }
		}, "clock", doctor.Fail, "clock not set", "NTP"},
		{"clock not synced", func(t *testing.T, b *box, s *doctor.Setup) {
			b.host.KernelClock = func() (status.Clock, error) { f := false; return status.Clock{Synced: &f}, nil }
		}, "clock", doctor.Warn, "not synchronised", "timedatectl"},
		{"outbox corrupt", func(t *testing.T, b *box, s *doctor.Setup) {
			writeFile(t, s.Config.StorePath(), strings.Repeat("not a bbolt file ", 500))
		}, "outbox", doctor.Fail, "corrupt", "moves the damaged file aside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBox(t)
			s := b.setup(t)
			tt.break_(t, b, &s)
			r := b.diagnose(t, s)
			expect(t, r, tt.check, tt.level, tt.msg, tt.next)
		})
	}
}

// deviceNode makes a stand-in for a device node: root-owned, in group gid,
// mode 0660, as udev creates serial ports.
func deviceNode(tb testing.TB, b *box, name string, gid int) string {
	tb.Helper()
	p := filepath.Join(b.root, "dev", name)
	writeFile(tb, p, "")
	if err := os.Chown(p, 0, gid); err != nil {
		tb.Fatalf("chown %s: %v (the test runs as root)", p, err)
	}
	if err := os.Chmod(p, 0o660); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestSetupListsSPIRadio(t *testing.T) {
	b := newBox(t)
	data, _ := os.ReadFile(b.cfgPath)
	writeFile(t, b.cfgPath, string(data)+"[[drivers.lora]]\nname = \"radio\"\nmode = \"sx127x\"\nspi = \"/dev/spidev0.0\"\ngateway_eui = \"b827ebfffe6e3c01\"\nfreq_hz = 868100000\n")
	s := b.setup(t) // the devices are the drivers' own list
	want := []doctor.Device{{Driver: "radio", What: "SX127x radio (SPI)", Path: "/dev/spidev0.0", Kind: drivers.DeviceNode},
		{Driver: "radio", What: "GPIO chip (reset GPIO17, DIO0 GPIO4)", Path: "/dev/gpiochip*", Kind: drivers.DeviceNodeReadOnly}}
	if !slices.Equal(s.Devices, want) {
		t.Errorf("Devices = %+v, want %+v", s.Devices, want)
	}
}

func TestOutboxNearlyFull(t *testing.T) {
	b := newBox(t)
	s := b.setup(t)
	st, err := store.Open(s.Config.StorePath(), store.Options{MaxBytes: 1 << 20, Now: func() time.Time { return testNow.Add(-3 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	// 95% of the 1 MiB quota, in 4 KiB records, none acknowledged.
	var entries []store.Entry
	for seq := uint64(1); seq <= 243; seq++ {
		data := bytes.Repeat([]byte{byte(seq)}, 4096)
		entries = append(entries, store.Entry{Seq: seq, Hash: sha256.Sum256(data), Data: data})
	}
	if _, err := st.Append(entries, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()
	r := b.diagnose(t, s)
	expect(t, r, "outbox", doctor.Warn, "outbox nearly full: 243 records, 972.0 KiB of 1.0 MiB quota (95%), head seq 243, oldest 3 h old", "uplinks are not keeping up")

	// While a daemon holds it, doctor without a status socket says so.
	held, err := store.Open(s.Config.StorePath(), store.Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	r = b.diagnose(t, s)
	expect(t, r, "outbox", doctor.Warn, "another process holds the outbox", "fuser -v")
}

func TestReadOnlyDataDir(t *testing.T) {
	b := newBox(t)
	s := b.setup(t)
	dir := filepath.Join(b.root, "ro")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	// A real read-only filesystem, as the kernel leaves a failing SD card:
	// root ignores mode bits, so only a mount makes writes fail for root.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a read-only tmpfs (the test needs root and util-linux's mount): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	s.Config.Device.DataDir = dir
	b.host.Statfs = nil // the real statfs
	b.host.Mounts = ""  // the real /proc/mounts
	r := b.diagnose(t, s)
	expect(t, r, "data dir", doctor.Fail, "read-only filesystem", "dmesg")
	expect(t, r, "filesystem", doctor.Fail, "mounted read-only (tmpfs on "+dir+")", "replace the card")
}

func TestImmutableDataDir(t *testing.T) {
	b := newBox(t)
	s := b.setup(t)
	dir := s.Config.Device.DataDir
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Fatalf("chattr +i (the test needs root, e2fsprogs and a filesystem with attributes): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", dir).Run() })
	r := b.diagnose(t, s)
	expect(t, r, "data dir", doctor.Fail, "refuses writes even to root", "chattr -i")
}

func TestBrokers(t *testing.T) {
	pki := mqtttest.NewPKI(t, "net")
	srvCert, srvKey := pki.Server(t)
	tlsBroker := mqtttest.Start(t, mqtttest.Config{TLS: &mqtttest.TLS{CAFile: pki.CAFile, CertFile: srvCert, KeyFile: srvKey, RequireClientCert: true}})
	plain := mqtttest.Start(t, mqtttest.Config{})
	stopped := mqtttest.Start(t, mqtttest.Config{})
	stopped.Stop()

	goodCert, goodKey := pki.Client(t, "device", time.Now().Add(365*24*time.Hour))
	soonCert, soonKey := pki.Client(t, "soon", time.Now().Add(10*24*time.Hour))
	oldCert, oldKey := pki.Client(t, "old", time.Now().Add(-48*time.Hour))
	strangers := mqtttest.NewPKI(t, "strangers")
	strangerCert, strangerKey := strangers.Client(t, "stranger", time.Now().Add(365*24*time.Hour))

	addr := func(br *mqtttest.Broker) string { return "127.0.0.1:" + itoa(br.Port()) }
	tlsEP := func(cert, key string) doctor.Endpoint {
		return doctor.Endpoint{Uplink: "mqtt", Addr: addr(tlsBroker), TLS: true, CAFile: pki.CAFile, CertFile: cert, KeyFile: key}
	}
	tests := []struct {
		name      string
		ep        doctor.Endpoint
		level     doctor.Level
		msg, next string
	}{
		{"plain broker up", doctor.Endpoint{Uplink: "mqtt", Addr: addr(plain)}, doctor.OK, "reachable", ""},
		{"broker stopped", doctor.Endpoint{Uplink: "mqtt", Addr: addr(stopped)}, doctor.Fail, "unreachable: connection refused", "is the service running there?"},
		// mqtttest's broker certificate lives a day: verified, and warned about.
		{"mutual TLS, broker certificate expiring", tlsEP(goodCert, goodKey), doctor.Warn, "the broker's certificate expires in 23 h", "tell the broker's operator"},
		{"client certificate expiring", tlsEP(soonCert, soonKey), doctor.Warn, "client certificate expires in", "renewed client certificate"},
		{"client certificate expired", tlsEP(oldCert, oldKey), doctor.Fail,
			"the broker rejects the client certificate: it expired on " + time.Now().Add(-48*time.Hour).UTC().Format(time.DateOnly), "install a renewed client certificate"},
		{"client certificate from another CA", tlsEP(strangerCert, strangerKey), doctor.Fail, "rejects the client certificate", "issued for this device"},
		{"wrong CA for the broker", doctor.Endpoint{Uplink: "mqtt", Addr: addr(tlsBroker), TLS: true, CAFile: strangers.CAFile, CertFile: goodCert, KeyFile: goodKey},
			doctor.Fail, "unknown authority", "check ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBox(t)
			b.host.Now = time.Now // certificates are made against the real clock
			s := b.setup(t)
			s.Endpoints = []doctor.Endpoint{tt.ep}
			r := b.diagnose(t, s)
			expect(t, r, tt.ep.Uplink+" "+tt.ep.Addr, tt.level, tt.msg, tt.next)
		})
	}
}

// TestDaemonRunning serves status documents over a real socket and checks
// doctor's reading of them.
func TestDaemonRunning(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(d *status.Doc)
		check     string
		level     doctor.Level
		msg, next string
	}{
		{"healthy", func(d *status.Doc) {}, "driver gps", doctor.OK, "GNSS 3D fix, 9 satellites", ""},
		{"gnss no fix for 40 min", func(d *status.Doc) {
			g := d.Drivers[0].GNSS
			g.Mode, g.Satellites, g.LastFix = 1, 0, d.Time.Add(-40*time.Minute)
		}, "driver gps", doctor.Fail, "GNSS has no fix for 40 min", "check the antenna"},
		{"gnss no fix for 12 min", func(d *status.Doc) {
			g := d.Drivers[0].GNSS
			g.Mode, g.LastFix = 1, d.Time.Add(-12*time.Minute)
		}, "driver gps", doctor.Warn, "GNSS has no fix for 12 min", "check the antenna"},
		{"gnss unplugged", func(d *status.Doc) { d.Drivers[0].GNSS.Connected = false }, "driver gps", doctor.Fail, "not connected", "check the cable"},
		{"gnss sentences without checksums", func(d *status.Doc) {
			g := d.Drivers[0].GNSS
			g.Rejected["no_checksum"], g.LastReject = 40000, "gnss: parse \"$GPGGA,1400\": gnss: sentence without checksum"
		}, "driver gps", doctor.Warn, "GNSS input refused: 40005 of 598005 (mostly no checksum)", `checksum = "optional"`},
		{"gnss nothing decodes", func(d *status.Doc) {
			g := d.Drivers[0].GNSS
			g.Sentences, g.Rejected["garbled"] = 0, 900
		}, "driver gps", doctor.Fail, "GNSS input refused: 903 of 903 (mostly garbled)", "check the baud rate"},
		{"driver failed", func(d *status.Doc) {
			d.Drivers[2].State, d.Drivers[2].Reason, d.Drivers[2].Env = status.StateFailed, "env: open /dev/i2c-1: permission denied", nil
		}, "driver bme", doctor.Fail, "permission denied", "journalctl"},
		{"driver skipped", func(d *status.Doc) {
			d.Drivers[2].State, d.Drivers[2].Reason, d.Drivers[2].Env = status.StateSkipped, "no chip at 0x76", nil
		}, "driver bme", doctor.Warn, "no chip at 0x76", "check the wiring"},
		{"lora socket drops", func(d *status.Doc) { d.Drivers[1].LoRa.SocketDrops = 120 }, "driver lora", doctor.Warn, "dropped 120", "rmem_max"},
		{"lora silent", func(d *status.Doc) {
			l := d.Drivers[1].LoRa
			l.Mode, l.Listen, l.Gateways[0].LastSeen = "udp", "127.0.0.1:1690", d.Time.Add(-10*time.Minute)
		}, "driver lora", doctor.Fail, "no gateway heard for 10 min", "serv_port_up and serv_port_down are both 1690"},
		{"lora concentratord down", func(d *status.Doc) {
			l := d.Drivers[1].LoRa
			l.Mode, l.Connected, l.LastError = "concentratord", new(bool), "dial unix /tmp/concentratord_event: connect: no such file or directory"
		}, "driver lora", doctor.Fail, "concentratord source not connected", "api.event_bind"},
		{"lora tap", func(d *status.Doc) { d.Drivers[1].LoRa.Mode, d.Drivers[1].LoRa.Tap = "udp", true }, "lora lora network service", doctor.OK, "tap mode", ""},
		{"lora upstream ok", func(d *status.Doc) {
			l := d.Drivers[1].LoRa
			l.Mode, l.Upstreams = "udp", []status.LoRaUpstream{{Name: "helium", Addr: "127.0.0.1:1680", State: "ok", Sent: 400, Acks: 396, AckRatio: 0.99, DownlinksRelayed: 7}}
		}, "lora lora upstream helium", doctor.OK, "127.0.0.1:1680 reachable, ack ratio 99% (396 acks for 400 sent), 7 downlinks relayed", ""},
		{"lora upstream unreachable", func(d *status.Doc) {
			l := d.Drivers[1].LoRa
			l.Mode, l.Upstreams = "udp", []status.LoRaUpstream{{Name: "ttn", Addr: "eu1.cloud.thethings.network:1700", Resolved: "52.212.223.226:1700",
				State: "unreachable", LastError: "read udp: connection refused", Sent: 50}}
		}, "lora lora upstream ttn", doctor.Fail, "eu1.cloud.thethings.network:1700 (52.212.223.226:1700) unreachable (ICMP)", "ss -ulpn"},
		{"lora upstream unresolved", func(d *status.Doc) {
			l := d.Drivers[1].LoRa
			l.Mode, l.Upstreams = "udp", []status.LoRaUpstream{{Name: "ns", Addr: "ns.invalid:1700", State: "unresolved", LastError: "no such host"}}
		}, "lora lora upstream ns", doctor.Fail, "does not resolve", "getent hosts ns.invalid"},
		{"lora gateway table full", func(d *status.Doc) {
			d.Drivers[1].LoRa.GatewaysRefused, d.Drivers[1].LoRa.MaxGateways = 9000, 64
		}, "driver lora", doctor.Warn, "gateway table full", "gateways = [...]"},
		{"quota nearly full", func(d *status.Doc) { d.Store.Bytes = d.Store.MaxBytes * 92 / 100 }, "outbox", doctor.Warn, "nearly full", "not keeping up"},
		{"integrity check failed", func(d *status.Doc) {
			d.Store.LastCheck = &status.Check{At: d.Time, Error: "store: check: outbox is corrupt: bad page"}
		}, "outbox", doctor.Fail, "bad page", "restart the daemon"},
		{"broker down", func(d *status.Doc) {
			d.Uplinks[0].Connected, d.Uplinks[0].LastError = false, "broker unreachable: connection refused"
		}, "uplink mqtt", doctor.Fail, "not connected to ssl://broker.example:8883: broker unreachable: connection refused", "check the network"},
		{"client cert expired", func(d *status.Doc) {
			d.Uplinks[0].Connected, d.Uplinks[0].ClientCertExpiry = false, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		}, "uplink mqtt", doctor.Fail, "the broker rejects the client certificate: it expired on 2026-03-01", "renewed client certificate"},
		{"acks stalled", func(d *status.Doc) { d.Uplinks[0].LastAck = d.Time.Add(-time.Hour) }, "uplink mqtt", doctor.Warn, "nothing acknowledged lately", "ACLs"},
		{"pipeline stuck", func(d *status.Doc) { d.Pipeline.LastProgress = d.Time.Add(-5 * time.Minute) }, "pipeline", doctor.Fail, "no progress for 5 min", "SD card"},
		{"clock off from gnss", func(d *status.Doc) { d.Clock.GNSSOffsetSeconds = status.Seconds(-7 * time.Second) }, "clock", doctor.Warn, "differs from GNSS time by -7.0 s", "NTP"},
		{"read-only disk", func(d *status.Doc) { d.Disk.FreeBytes = 10 << 20 }, "disk space", doctor.Fail, "10.0 MiB free", "free space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBox(t)
			doc := statustest.Sample(testNow)
			tt.edit(doc)
			serveDoc(t, b.socket, doc)
			r := b.diagnose(t, b.setup(t))
			if r.Daemon != doctor.DaemonRunning {
				t.Fatalf("daemon = %q, want running; results %+v", r.Daemon, r.Results)
			}
			expect(t, r, "daemon", doctor.OK, "running for 26 h, edge-agent 1.0.0", "")
			expect(t, r, tt.check, tt.level, tt.msg, tt.next)
			if tt.level == doctor.OK && r.Verdict != doctor.OK {
				t.Errorf("healthy document: verdict %v, want ok: %+v", r.Verdict, r.Results)
			}
			if r.ExitCode() != int(r.Verdict) {
				t.Errorf("exit code %d for verdict %v", r.ExitCode(), r.Verdict)
			}
		})
	}
}

func serveDoc(tb testing.TB, socket string, doc *status.Doc) {
	tb.Helper()
	srv, err := status.Listen(statustest.NewSource(doc), status.ServerOpts{Socket: socket})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.Run(ctx) }()
	tb.Cleanup(func() { cancel(); wg.Wait() })
}

// TestJSONGolden pins the --json report of a box whose daemon is down: the
// shape field tools parse.
func TestJSONGolden(t *testing.T) {
	b := newBox(t)
	s := b.setup(t)
	s.Devices = []doctor.Device{{Driver: "gps", What: "GNSS receiver", Path: filepath.Join(b.root, "dev", "ttyAMA0")}}
	r := b.diagnose(t, s)
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(buf.String(), b.root, "$ROOT")
	golden := filepath.Join("testdata", "daemon-down.json")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./doctor -run JSONGolden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("JSON report differs from %s:\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
	var back doctor.Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("report does not parse back: %v", err)
	}
	if back.Verdict != doctor.Fail || back.Schema != doctor.ReportSchema || len(back.Results) != len(r.Results) {
		t.Errorf("parsed back %+v", back)
	}
}

func TestWriteText(t *testing.T) {
	b := newBox(t)
	s := b.setup(t)
	s.Devices = []doctor.Device{{Driver: "gps", What: "GNSS receiver", Path: filepath.Join(b.root, "dev", "ttyAMA0")}}
	r := b.diagnose(t, s)
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, line := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(line); n > 80 && strings.Count(line, " ") > 8 {
			t.Errorf("line of %d columns (want ≤ 80):\n%s", n, line)
		}
	}
	for _, want := range []string{"[FAIL] daemon:", "[ ok ] config:", "→ check the wiring", "verdict: FAIL, 2 failed, 0 warnings"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckPanics(t *testing.T) {
	res := doctor.Run(context.Background(), []doctor.Check{
		{Name: "fine", Fn: func(context.Context) (doctor.Level, string, string) { return doctor.OK, "fine", "ignored" }},
		{Name: "broken", Fn: func(context.Context) (doctor.Level, string, string) { panic("boom") }},
	})
	if res[0].Level != doctor.OK || res[0].Next != "" {
		t.Errorf("ok result = %+v, want no next step", res[0])
	}
	if res[1].Level != doctor.Fail || !strings.Contains(res[1].Message, "boom") {
		t.Errorf("panicking check = %+v", res[1])
	}
	if doctor.Worst(res) != doctor.Fail {
		t.Error("Worst ignored the failure")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestSetupListsEveryDeviceAndEndpoint: what doctor checks with the daemon
// down comes from every family and uplink in the config.
func TestSetupListsEveryDeviceAndEndpoint(t *testing.T) {
	b := newBox(t)
	data, _ := os.ReadFile(b.cfgPath)
	writeFile(t, b.cfgPath, string(data)+`
[[drivers.gnss]]
name = "gps0"
device = "/dev/ttyAMA0"
[[drivers.gnss]]
name = "gps1"
source = "gpsd"
gpsd_addr = "127.0.0.1:2947"
[[drivers.env]]
name = "bme0"
bus = "/dev/i2c-1"
[uplinks.mqtt]
enabled = true
servers = ["mqtts://broker.example:8883", "tcp://10.0.0.1"]
[uplinks.p2p]
enabled = true
bootstrap = ["/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWQ3eWW38AdPpzhdTSGrQmxzezRMMidxAcRUCDTjKECbCx"]
collectors = ["12D3KooWQ3eWW38AdPpzhdTSGrQmxzezRMMidxAcRUCDTjKECbCx"]
`)
	s := b.setup(t) // the devices and drivers' servers are the drivers' own list
	wantDev := []doctor.Device{
		{Driver: "gps0", What: "GNSS receiver (serial)", Path: "/dev/ttyAMA0", Kind: drivers.DeviceNode},
		{Driver: "bme0", What: "I²C bus", Path: "/dev/i2c-1", Kind: drivers.DeviceNode},
	}
	if fmt.Sprint(s.Devices) != fmt.Sprint(wantDev) {
		t.Errorf("Devices = %+v\nwant %+v", s.Devices, wantDev)
	}
	var got []string
	for _, e := range s.Endpoints {
		got = append(got, fmt.Sprintf("%s %s tls=%v", e.Uplink, e.Addr, e.TLS))
	}
	want := []string{"gpsd 127.0.0.1:2947 tls=false", "mqtt broker.example:8883 tls=true", "mqtt 10.0.0.1:1883 tls=false", "p2p 203.0.113.7:4001 tls=false"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Endpoints = %v\nwant %v", got, want)
	}
}

// TestNothingConfigured: a fresh install's config (no drivers, no uplinks)
// is a failure with the next step, not "all checks passed".
func TestNothingConfigured(t *testing.T) {
	for _, tt := range []struct{ name, extra, says string }{
		{"neither", "", "no drivers and no uplinks configured"},
		{"no uplinks", "[[drivers.sim]]\nname = \"s\"\nkind = \"counter\"\n", "no uplinks configured"},
		{"no drivers", "[uplinks.file]\nenabled = true\n", "no drivers configured"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBox(t)
			writeFile(t, b.cfgPath, fmt.Sprintf("version = 1\n[device]\nkey = %q\ndata_dir = %q\n%s",
				"file:"+filepath.Join(b.root, "var", "lib", "edge-agent", "device.key"), filepath.Join(b.root, "var", "lib", "edge-agent"), tt.extra))
			r := b.diagnose(t, b.setup(t))
			for _, res := range r.Results {
				if res.Name == "drivers and uplinks" {
					if res.Level != doctor.Fail || !strings.Contains(res.Message, tt.says) || !strings.Contains(res.Next, "reload") {
						t.Errorf("got %+v", res)
					}
					return
				}
			}
			t.Errorf("no drivers-and-uplinks check in %+v", r.Results)
		})
	}
}

// TestDaemonDownProbesThroughTheDrivers: with the daemon down, each device
// is judged by the Probe of the driver the daemon would run, the camera's
// directory included; a device node that is present but is not what its
// driver needs fails with the driver's own words.
func TestDaemonDownProbesThroughTheDrivers(t *testing.T) {
	for _, tt := range []struct {
		name, block, check string
		level              doctor.Level
		msg, next          string
	}{
		{"camera dir missing", "[[drivers.camera]]\nname = \"dash\"\ndir = %q\n", "dash device", doctor.Fail,
			"camera directory not found", "storage is mounted"},
		{"camera dir there", "[[drivers.camera]]\nname = \"dash\"\ndir = %q\n", "dash device", doctor.OK,
			"its driver can read it", ""},
		{"a bus the driver refuses", "[[drivers.env]]\nname = \"air\"\nbus = %q\n", "drivers", doctor.Fail,
			"want /dev/i2c-N", "fix the [[drivers.*]] block"},
		{"not a serial port", "[[drivers.obd]]\nname = \"car\"\ndevice = %q\n", "car device", doctor.Fail,
			"OBD-II adapter (ELM327, serial) at", "fix what the message names"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBox(t)
			path := filepath.Join(b.root, "dev", "thing")
			switch tt.name {
			case "camera dir there":
				if err := os.MkdirAll(path, 0o755); err != nil {
					t.Fatal(err)
				}
			case "not a serial port", "a bus the driver refuses":
				writeFile(t, path, "") // a regular file: the driver's termios or bus check refuses it
			}
			data, _ := os.ReadFile(b.cfgPath)
			writeFile(t, b.cfgPath, string(data)+fmt.Sprintf(tt.block, path))
			expect(t, b.diagnose(t, b.setup(t)), tt.check, tt.level, tt.msg, tt.next)
		})
	}
}
