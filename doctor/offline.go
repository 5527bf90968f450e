package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/keys"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/store"
)

// Fetcher reads the daemon's status document; *status.Client is one.
type Fetcher interface {
	Fetch(ctx context.Context) (*status.Doc, error)
}

// Diagnose runs the whole checklist: from the daemon's status document when
// it answers, and directly against the host when it does not.
func Diagnose(ctx context.Context, h Host, s Setup, f Fetcher) *Report {
	h = h.withDefaults()
	r := &Report{Schema: ReportSchema, Time: h.Now().UTC()}
	doc, err := f.Fetch(ctx)
	var checks []Check
	switch {
	case err == nil:
		r.Daemon = DaemonRunning
		checks = h.onlineChecks(s, doc)
	case errors.Is(err, status.ErrNotRunning):
		r.Daemon = DaemonNotRunning
		checks = append([]Check{{"daemon", func(context.Context) (Level, string, string) {
			if s.Socket != "" {
				return Fail, "the daemon is not running: nothing answers on " + s.Socket, "start it with `systemctl start edge-agent`; if it stops again, `journalctl -u edge-agent -n 50` says why"
			}
			return Fail, err.Error(), "start it with `systemctl start edge-agent`"
		}}}, h.offlineChecks(s)...)
	case errors.Is(err, status.ErrDaemonFailed):
		r.Daemon = DaemonRunning
		checks = append([]Check{{"daemon", func(context.Context) (Level, string, string) {
			return Fail, "the daemon runs but cannot report its status: " + err.Error(),
				"`journalctl -u edge-agent -n 50` shows the ERROR line with the cause; checking the host directly meanwhile"
		}}}, h.offlineChecks(s)...)
	default:
		r.Daemon = DaemonUnknown
		checks = append([]Check{{"daemon", func(context.Context) (Level, string, string) {
			return Warn, "cannot read the daemon's status: " + err.Error(), "checking the host directly instead; run doctor with sudo for the daemon's view"
		}}}, h.offlineChecks(s)...)
	}
	r.Results = Run(ctx, checks)
	r.Verdict = Worst(r.Results)
	return r
}

// cfgOrDefault is the config to take paths from: the default's when the
// file did not load, so the data directory and key are still checked.
func (s Setup) cfgOrDefault() *config.Config {
	if s.Config != nil {
		return s.Config
	}
	c := config.Default()
	return &c
}

// offlineChecks are the direct checks for a host whose daemon is down.
func (h *Host) offlineChecks(s Setup) []Check {
	cfg := s.cfgOrDefault()
	svc, svcErr := h.lookupUser(h.ServiceUser)
	checks := []Check{
		h.checkConfig(s),
		checkConfigured(s.Config),
		h.checkServiceUser(svc, svcErr),
		h.checkKey(cfg.Device.Key, svc),
		checkCert(cfg, h.Now),
	}
	if s.DriversErr != nil {
		checks = append(checks, Check{"drivers", func(context.Context) (Level, string, string) {
			return Fail, "the daemon cannot build its drivers from this config: " + oneLine(s.DriversErr),
				"fix the [[drivers.*]] block the message names, then `edge-agent config check`"
		}})
	}
	seen := map[string]int{}
	for _, d := range s.Devices {
		// A driver's probe looks at its first device; a second one (an
		// SX127x's GPIO chips) is checked for access only.
		n := seen[d.Driver] + 1
		seen[d.Driver] = n
		name, listen := d.Driver+" device", s.Listen[d.Driver]
		if n > 1 {
			name, listen = fmt.Sprintf("%s device %d", d.Driver, n), nil
		}
		checks = append(checks, h.checkDevice(name, d, svc, listen))
	}
	checks = append(checks,
		h.checkDataDir(cfg.Device.DataDir, svc),
		h.checkReadOnly(cfg.Device.DataDir),
		h.checkUpdate(cfg.Device.DataDir),
		h.checkDiskSpace(cfg.Device.DataDir, int64(cfg.Store.MaxBytes)),
		h.checkOutbox(cfg.StorePath(), int64(cfg.Store.MaxBytes)),
	)
	for _, e := range s.Endpoints {
		checks = append(checks, h.checkEndpoint(e))
	}
	return append(checks, h.checkClock())
}

// checkConfigured fails a config that observes nothing or delivers nothing:
// a fresh install with the shipped config must not look healthy.
func checkConfigured(cfg *config.Config) Check {
	return Check{"drivers and uplinks", func(context.Context) (Level, string, string) {
		if cfg == nil {
			return Warn, "not checked: the config did not load", "fix the config first"
		}
		d := cfg.Drivers
		drivers := len(d.Sim) + len(d.GNSS) + len(d.Env) + len(d.Camera) + len(d.LoRa) + len(d.OBD) + len(d.Energy)
		u := cfg.Uplinks
		var ups []string
		for _, x := range []struct {
			on   bool
			name string
		}{{u.File.Enabled, "file"}, {u.MQTT.Enabled, "mqtt"}, {u.P2P.Enabled, "p2p"}} {
			if x.on {
				ups = append(ups, x.name)
			}
		}
		return configuredVerdict(drivers, len(ups), fmt.Sprintf("%d drivers, uplinks %s", drivers, strings.Join(ups, ", ")))
	}}
}

func configuredVerdict(drivers, uplinks int, msg string) (Level, string, string) {
	const reload = "; then `systemctl reload edge-agent`"
	switch {
	case drivers == 0 && uplinks == 0:
		return Fail, "no drivers and no uplinks configured: this box observes nothing and sends nothing",
			"uncomment the example for your board in /etc/edge-agent/config.toml (or add a drop-in in /etc/edge-agent/config.d/) and enable [uplinks.mqtt]" + reload
	case drivers == 0:
		return Fail, "no drivers configured: nothing is observed or signed",
			"uncomment the example for your hardware in /etc/edge-agent/config.toml ([[drivers.gnss]], [[drivers.lora]], [[drivers.env]])" + reload
	case uplinks == 0:
		return Fail, "no uplinks configured: records stay in the outbox and nobody receives them",
			"enable [uplinks.mqtt] (servers = the broker) or [uplinks.p2p] in /etc/edge-agent/config.toml" + reload
	}
	return OK, msg, ""
}

func (h *Host) checkConfig(s Setup) Check {
	return Check{"config", func(context.Context) (Level, string, string) {
		if s.ConfigErr != nil {
			next := "fix the key(s) named above, then `edge-agent config check " + s.ConfigPath + "`; the defaults are in `edge-agent config default`"
			if errors.Is(s.ConfigErr, config.ErrNotFound) {
				next = "create it with `edge-agent config default > " + s.ConfigPath + "`, then edit it"
			}
			return Fail, oneLine(s.ConfigErr), next
		}
		return OK, s.ConfigPath + " is valid", ""
	}}
}

func (h *Host) checkServiceUser(svc *account, err error) Check {
	return Check{"service user", func(context.Context) (Level, string, string) {
		if errors.Is(err, errNoUser) {
			return Warn, fmt.Sprintf("user %s does not exist, so its access to devices and files is not checked", h.ServiceUser),
				"install the edge-agent package (it creates the user), or run the daemon as a user that can open the devices"
		}
		if err != nil {
			return Warn, "cannot read the user database: " + err.Error(), "run doctor with sudo"
		}
		var names []string
		for gid := range svc.groups {
			names = append(names, h.groupName(gid))
		}
		sort.Strings(names)
		return OK, fmt.Sprintf("%s (uid %d), groups %s", svc.name, svc.uid, strings.Join(names, ", ")), ""
	}}
}

// keyFile is the path of a file: key URI, "" for other schemes.
func keyFile(uri string) string {
	rest, ok := strings.CutPrefix(uri, "file:")
	if !ok {
		if strings.HasPrefix(uri, "/") {
			return uri
		}
		return ""
	}
	if p, ok := strings.CutPrefix(rest, "//"); ok {
		return p
	}
	return rest
}

func (h *Host) checkKey(uri string, svc *account) Check {
	if keys.Hardware(uri) {
		return checkHardwareKey(uri)
	}
	return Check{"device key", func(context.Context) (Level, string, string) {
		path := keyFile(uri)
		signer, err := attest.OpenSigner(uri)
		switch {
		case errors.Is(err, attest.ErrKeyNotFound):
			return Warn, "no device key at " + path + " yet",
				"the daemon creates it at its first start; to create it now: `edge-agent keys init`"
		case errors.Is(err, attest.ErrKeyPermissions):
			return Fail, oneLine(err), fmt.Sprintf("`chmod 600 %s && chown %s: %s`; if others could read it, treat the identity as exposed", path, h.ServiceUser, path)
		case errors.Is(err, attest.ErrKeyEmpty):
			return Fail, oneLine(err), "start the daemon: it replaces an empty key by itself when the outbox holds no signed records; " +
				"if it does, the key was lost: restore it from its backup"
		case errors.Is(err, attest.ErrKeyInvalid):
			return Fail, oneLine(err), "restore the key from its backup: a new key is a new device identity, and the network must enrol it again"
		case errors.Is(err, fs.ErrPermission):
			// A tech in the edge-agent group may not read the key, and
			// should not: what matters is that the service user can.
			if fi, serr := os.Stat(path); serr == nil && svc != nil && canAccess(svc, fi, accRead) {
				return OK, fmt.Sprintf("%s is readable by %s (mode %04o); run doctor with sudo to see the device id", path, svc.name, fi.Mode().Perm()), ""
			}
			return Fail, oneLine(err), "run doctor with sudo to check the key"
		case err != nil:
			return Fail, oneLine(err), "set device.key to file:/var/lib/edge-agent/device.key"
		}
		if svc != nil && path != "" {
			if fi, err := os.Stat(path); err == nil && !canAccess(svc, fi, accRead) {
				return Fail, fmt.Sprintf("user %s cannot read the key %s (owner uid %d, mode %04o)", svc.name, path, fileUID(fi), fi.Mode().Perm()),
					fmt.Sprintf("`chown %s: %s`", svc.name, path)
			}
		}
		return OK, "device id " + signer.DeviceID() + " (" + path + "; backend file, EdDSA, a software key: it can be copied)", ""
	}}
}

func (h *Host) checkDevice(name string, d Device, svc *account, listen func(context.Context) error) Check {
	return Check{name, func(ctx context.Context) (Level, string, string) {
		paths := []string{d.Path}
		if strings.ContainsAny(d.Path, "*?[") { // the driver opens every match
			paths, _ = filepath.Glob(d.Path)
			if len(paths) == 0 {
				return Fail, fmt.Sprintf("%s not found: nothing matches %s", d.What, d.Path), nextNoNode
			}
		}
		for _, p := range paths {
			if level, msg, next := h.checkNode(d, p, svc); level != OK {
				return level, msg, next
			}
		}
		msg := fmt.Sprintf("%s present at %s", d.What, strings.Join(paths, ", "))
		if svc != nil && len(paths) > 1 {
			msg += fmt.Sprintf("; %s may open them", svc.name)
		} else if svc != nil {
			msg += fmt.Sprintf("; %s may open it", svc.name)
		}
		if listen != nil {
			if err := listen(ctx); err != nil {
				return Fail, fmt.Sprintf("%s at %s: %s", d.What, d.Path, oneLine(err)), "fix what the message names, then run doctor again"
			}
			switch d.Kind {
			case drivers.DeviceDir:
				msg += "; its driver can read it"
			case drivers.DeviceSocket:
				msg += "; its driver's probe passes"
			default:
				msg += "; it sends usable data"
			}
		}
		return OK, msg, ""
	}}
}

const nextNoNode = "check the wiring and that the interface is enabled (raspi-config → Interface Options, or dtparam/dtoverlay in /boot/firmware/config.txt), then reboot"

// checkNode checks that path exists and that the service user has the
// access d's driver needs; OK says nothing more.
func (h *Host) checkNode(d Device, path string, svc *account) (Level, string, string) {
	dir := d.Kind == drivers.DeviceDir
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) && dir {
		return Fail, fmt.Sprintf("%s not found: %s does not exist", d.What, path),
			"check the camera software's output directory and that its storage is mounted"
	}
	if errors.Is(err, fs.ErrNotExist) && d.Kind == drivers.DeviceSocket {
		return Fail, fmt.Sprintf("%s not found: %s does not exist", d.What, path),
			"start the service that creates it (`systemctl status chirpstack-concentratord`), or fix the driver's path to it (event_url of [[drivers.lora]])"
	}
	if errors.Is(err, fs.ErrNotExist) {
		return Fail, fmt.Sprintf("%s not found: %s does not exist", d.What, path), nextNoNode
	}
	if err != nil {
		return Fail, fmt.Sprintf("%s at %s: %v", d.What, path, err), "run doctor with sudo"
	}
	need := uint32(accRead | accWrite)
	switch d.Kind {
	case drivers.DeviceDir:
		need = accRead | accList
	case drivers.DeviceNodeReadOnly:
		need = accRead
	case drivers.DeviceSocket:
		need = accWrite // connect(2) on a Unix socket
	}
	if svc == nil || canAccess(svc, fi, need) {
		return OK, "", ""
	}
	group := h.groupName(fileGID(fi))
	msg := fmt.Sprintf("user %s cannot open %s (group %s, mode %04o)", svc.name, path, group, fi.Mode().Perm())
	if dir {
		return Fail, msg, fmt.Sprintf("give user %s read and execute access: `setfacl -m u:%s:rx %s`, or add it to group %s with mode 0750", svc.name, svc.name, path, group)
	}
	if uint32(fi.Mode().Perm()>>3)&need == need {
		return Fail, msg, fmt.Sprintf("add user %s to group %s: `usermod -aG %s %s`, then `systemctl restart edge-agent`", svc.name, group, group, svc.name)
	}
	return Fail, msg, fmt.Sprintf("give group %s read/write with a udev rule (GROUP=\"%s\", MODE=\"0660\") and add user %s to it", group, group, svc.name)
}

func (h *Host) checkDataDir(dir string, svc *account) Check {
	return Check{"data dir", func(context.Context) (Level, string, string) {
		fi, err := os.Stat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return Warn, dir + " does not exist yet",
				fmt.Sprintf("the daemon creates it at start; or `install -d -o %s -g %s -m 0750 %s`", h.ServiceUser, h.ServiceUser, dir)
		}
		if err != nil {
			return Fail, fmt.Sprintf("cannot stat %s: %v", dir, err), "run doctor with sudo"
		}
		if err := probeWrite(dir); err != nil {
			switch {
			case errors.Is(err, syscall.EROFS):
				return Fail, dir + " is on a read-only filesystem: nothing can be stored", nextReadOnly(dir)
			case errors.Is(err, syscall.EPERM):
				return Fail, dir + " refuses writes even to root (immutable attribute?): " + err.Error(),
					fmt.Sprintf("`lsattr -d %s`; remove the attribute with `chattr -i %s`", dir, dir)
			case errors.Is(err, syscall.ENOSPC):
				return Fail, dir + " is full: " + err.Error(), "free space; the outbox quota is store.max_bytes"
			case errors.Is(err, syscall.EACCES):
				if svc != nil && canAccess(svc, fi, accWrite|1) {
					return OK, fmt.Sprintf("%s is writable by %s (mode %04o); run doctor with sudo for a write probe", dir, svc.name, fi.Mode().Perm()), ""
				}
				return Fail, "cannot write " + dir + " as this user", "run doctor with sudo"
			}
			return Fail, "cannot write " + dir + ": " + err.Error(), nextReadOnly(dir)
		}
		if svc != nil && !canAccess(svc, fi, accWrite|1) {
			return Fail, fmt.Sprintf("user %s cannot write %s (owner uid %d, mode %04o)", svc.name, dir, fileUID(fi), fi.Mode().Perm()),
				fmt.Sprintf("`chown -R %s:%s %s`", svc.name, svc.name, dir)
		}
		return OK, dir + " is writable (a probe file was written, synced and removed)", ""
	}}
}

// probeWrite writes, syncs and removes a small file in dir: the write path
// of the outbox, including the fsync a dying SD card fails.
func probeWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".doctor-probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(make([]byte, 4096))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func nextReadOnly(dir string) string {
	return fmt.Sprintf("the kernel remounts a failing SD card read-only: look for I/O errors with `dmesg | grep -iE 'mmc|ext4|I/O'`, copy %s off, and replace the card", dir)
}

// existing is path or its nearest existing ancestor, for statfs of a data
// directory the daemon has not created yet.
func existing(path string) string {
	for p := path; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil || p == filepath.Dir(p) {
			return p
		}
	}
}

func (h *Host) checkReadOnly(dir string) Check {
	return Check{"filesystem", func(context.Context) (Level, string, string) {
		at := existing(dir)
		disk, err := h.Statfs(at)
		if err != nil {
			return Warn, "cannot statfs " + at + ": " + err.Error(), "run doctor with sudo"
		}
		dev, point, opts, merr := h.mountOf(at)
		where := ""
		if merr == nil && point != "" {
			where = fmt.Sprintf(" (%s on %s)", dev, point)
		}
		if disk.ReadOnly || slices.Contains(opts, "ro") {
			return Fail, "the filesystem holding " + dir + " is mounted read-only" + where, nextReadOnly(dir)
		}
		// After an I/O error ext4 refuses writes (EROFS) while statfs and
		// /proc/mounts still say read-write: only a write tells.
		if f, err := os.CreateTemp(at, ".doctor-probe-*"); err == nil {
			f.Close()
			os.Remove(f.Name())
		} else if errors.Is(err, syscall.EROFS) {
			return Fail, "the filesystem holding " + dir + " refuses writes (read-only file system) although it is mounted read-write" + where +
				": the kernel stops writes after an I/O error", nextReadOnly(dir)
		}
		return OK, "the filesystem holding " + dir + " is read-write" + where, ""
	}}
}

// Disk space thresholds: below failFree the outbox can no longer take a
// day of records on a busy hotspot; below warnShare the owner has weeks.
const (
	failFreeBytes = 64 << 20
	failShare     = 0.02
	warnShare     = 0.10
)

func (h *Host) checkDiskSpace(dir string, quota int64) Check {
	return Check{"disk space", func(context.Context) (Level, string, string) {
		disk, err := h.Statfs(existing(dir))
		if err != nil {
			return Warn, "cannot statfs " + dir + ": " + err.Error(), "run doctor with sudo"
		}
		return diskVerdict(disk, quota)
	}}
}

func diskVerdict(d status.Disk, quota int64) (Level, string, string) {
	if d.Error != "" {
		return Warn, "cannot read free space: " + d.Error, "run doctor with sudo"
	}
	share := 0.0
	if d.TotalBytes > 0 {
		share = float64(d.FreeBytes) / float64(d.TotalBytes)
	}
	msg := fmt.Sprintf("%s free of %s (%.0f%%) on the filesystem of %s", humanBytes(d.FreeBytes), humanBytes(d.TotalBytes), share*100, d.Path)
	switch {
	case share < failShare || d.FreeBytes < failFreeBytes && share < warnShare:
		return Fail, msg, "free space: old logs (`journalctl --vacuum-size=50M`), camera segments, or move the data dir to a larger card"
	case share < warnShare:
		return Warn, msg, "free space soon: `du -xsh /var/* | sort -h` shows what uses it"
	case quota > d.TotalBytes && d.TotalBytes > 0:
		return Warn, msg + fmt.Sprintf("; the outbox quota (%s) is larger than the whole filesystem", humanBytes(quota)),
			"lower store.max_bytes below the free space: until then the free space, not the quota, bounds the outbox (the oldest records are evicted)"
	case quota > d.FreeBytes:
		return Warn, msg + fmt.Sprintf("; the outbox quota (%s) is larger than that", humanBytes(quota)),
			"lower store.max_bytes below the free space, or free space: until then the free space bounds the outbox"
	}
	return OK, msg, ""
}

func (h *Host) checkOutbox(path string, quota int64) Check {
	return Check{"outbox", func(context.Context) (Level, string, string) {
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return OK, "no outbox at " + path + " yet: the daemon creates it at its first start", ""
		}
		st, err := store.Open(path, store.Options{ReadOnly: true, MaxBytes: quota, LockTimeout: 500 * time.Millisecond})
		switch {
		case errors.Is(err, fs.ErrPermission) && fi != nil && fileUID(fi) != os.Getuid():
			return OK, fmt.Sprintf("%s (%s) belongs to uid %d; run doctor with sudo to check its records", path, humanBytes(fi.Size()), fileUID(fi)), ""
		case errors.Is(err, store.ErrLocked):
			return Warn, "another process holds the outbox " + path + " open, yet no daemon answers on the status socket",
				"`systemctl status edge-agent`; `fuser -v " + path + "` names the process"
		case errors.Is(err, store.ErrCorrupt):
			return Fail, oneLine(err), "start the daemon: it moves the damaged file aside and starts a new chain (records in it are not delivered); then check the SD card with `dmesg`"
		case err != nil:
			return Fail, oneLine(err), "run doctor with sudo; if it persists, check the SD card with `dmesg`"
		}
		defer st.Close()
		if err := st.Check(); err != nil {
			return Fail, oneLine(err), "start the daemon: it moves the damaged file aside and starts a new chain; then check the SD card with `dmesg`"
		}
		stats, err := st.Stats()
		if err != nil {
			return Fail, oneLine(err), "check the SD card with `dmesg`"
		}
		return storeVerdict(status.Store{
			Path: path, Records: stats.Records, Bytes: stats.Bytes, MaxBytes: stats.MaxBytes, HeadSeq: stats.HeadSeq,
			Oldest: stats.OldestAppended, Evicted: stats.Evicted, Recovery: recoveryOf(stats.Recovery),
		}, h.Now(), "passed a consistency check")
	}}
}

func recoveryOf(r *store.Recovery) *status.Recovery {
	if r == nil {
		return nil
	}
	return &status.Recovery{At: r.At, MovedTo: r.MovedTo, Reason: r.Reason}
}

// quotaWarn is the share of the quota beyond which the uplinks are clearly
// not keeping up and eviction (lost records) is near.
const quotaWarn = 0.9

func storeVerdict(s status.Store, now time.Time, checked string) (Level, string, string) {
	msg := fmt.Sprintf("%d records, %s of %s quota (%.0f%%), head seq %d", s.Records, humanBytes(s.Bytes), humanBytes(s.MaxBytes), s.QuotaUsed()*100, s.HeadSeq)
	if !s.Oldest.IsZero() {
		msg += ", oldest " + roughly(now.Sub(s.Oldest)) + " old"
	}
	if checked != "" {
		msg += ", " + checked
	}
	switch {
	case s.LastCheck != nil && s.LastCheck.Error != "":
		return Fail, "outbox failed its consistency check at " + s.LastCheck.At.Format(time.RFC3339) + ": " + s.LastCheck.Error,
			"restart the daemon (it moves the damaged file aside and starts a new chain), then check the SD card with `dmesg`"
	case s.QuotaUsed() >= quotaWarn:
		return Warn, "outbox nearly full: " + msg + evictedNote(s),
			"the uplinks are not keeping up: see the uplink lines; beyond the quota the oldest records are evicted (announced by agent.gap)"
	case s.Recovery != nil:
		return Warn, fmt.Sprintf("%s; the outbox was replaced after corruption on %s (old file: %s)", msg, s.Recovery.At.Format(time.DateOnly), s.Recovery.MovedTo),
			"records in the old file were not delivered: recover its intact ones with `edge-agent queue export --db " + s.Recovery.MovedTo + " --out FILE` and hand the file to the network operator, then check the SD card with `dmesg`"
	case s.Evicted > 0:
		return Warn, msg + evictedNote(s), "records were lost to the quota after a long outage: raise store.max_bytes if the disk allows"
	}
	return OK, msg, ""
}

func evictedNote(s status.Store) string {
	if s.Evicted == 0 {
		return ""
	}
	return fmt.Sprintf("; %d records evicted so far", s.Evicted)
}

func (h *Host) checkClock() Check {
	return Check{"clock", func(context.Context) (Level, string, string) {
		return clockVerdict(h.Now(), h.KernelClock, nil)
	}}
}

// minYear is before any release of edge-agent: a clock earlier than this was
// never set (no RTC, no NTP yet).
const minYear = 2024

func clockVerdict(now time.Time, kernel func() (status.Clock, error), gnssOffset *float64) (Level, string, string) {
	if now.Year() < minYear {
		return Fail, "clock not set: it says " + now.UTC().Format("2006-01-02 15:04 MST") + " (no RTC and no NTP yet)",
			"connect the network so NTP can set it (`timedatectl`), or fit an RTC; records signed meanwhile carry a wrong time"
	}
	if gnssOffset != nil && (*gnssOffset > 2 || *gnssOffset < -2) {
		return Warn, fmt.Sprintf("system clock differs from GNSS time by %.1f s", *gnssOffset),
			"check NTP (`timedatectl timesync-status` or `chronyc tracking`); records are stamped with the system clock"
	}
	c, err := kernel()
	switch {
	case err != nil:
		return Warn, "cannot read the NTP state: " + err.Error(), "check with `timedatectl`"
	case c.Error != "":
		return Warn, "the daemon cannot read the NTP state: " + c.Error,
			"the unit's SystemCallFilter= must allow adjtimex (the shipped unit does; check `systemctl cat edge-agent` for a drop-in that removes it); meanwhile `timedatectl`"
	case c.Synced == nil:
		return Warn, "NTP state unknown", "check with `timedatectl`"
	case !*c.Synced:
		return Warn, "the system clock is not synchronised by NTP (it says " + now.UTC().Format(time.DateTime) + " UTC)",
			"check the network and the NTP client: `timedatectl timesync-status` or `chronyc tracking`"
	}
	return OK, fmt.Sprintf("%s UTC, NTP-synchronised (max error %s)", now.UTC().Format(time.DateTime),
		time.Duration(c.MaxErrorSeconds*float64(time.Second)).Round(time.Millisecond)), ""
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return strconv.FormatInt(n, 10) + " B"
}

// roughly says a duration the way a person would: "40 min", "3 h", "2 days".
func roughly(d time.Duration) string {
	switch {
	case d < 2*time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
