package config

import (
	"fmt"
	"strings"
	"time"
)

// DefaultTOML is the full default config: every key with its default value and a comment saying what it
// does and what it accepts, plus commented-out examples. It is what `edge-agent config default` prints
// and what the .deb ships as /etc/edge-agent/config.toml (packaging/config.toml; a test keeps them equal).
// Parse(DefaultTOML()) equals Default().
//
// Example lines are commented with a bare "#" ("#name = ...") and prose with "# ", so a reader (and a
// test) can tell an example from an explanation.
func DefaultTOML() string {
	d := Default()
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w(`# edge-agent configuration.
# Every key is shown with its default. Unknown keys are an error, so a typo is caught at start-up.
# Check a file with: edge-agent config check /etc/edge-agent/config.toml
# Sizes: an integer number of bytes, or a string such as "256MiB" or "8 MB"
#   (KiB, MiB, GiB, TiB = 1024^n; KB, MB, GB, TB = 1000^n).
# Durations: a string such as "500ms", "10s", "1m30s", "2h" (units: ns, us, ms, s, m, h).

# Format version of this file. Must be 1.
version = %d

[device]
# Signing key URI, created with `+"`edge-agent keys init`"+`:
#   "file:PATH"                              an Ed25519 key file
#   "tpm:/dev/tpmrm0?handle=0x81008ea0"      a P-256 key the TPM 2.0 holds (tpm:tcp://HOST:PORT: a simulator)
#   "ecc608:/dev/i2c-1?addr=0x60&slot=0"     a P-256 key in an ATECC608 secure element
key = %q
# Where the agent keeps its state (absolute path). Other paths default to places under it.
data_dir = %q
# Manufacturer certificate of the device key (PEM or DER), installed with
# `+"`edge-agent keys install-cert FILE`"+`; sent in an agent.cert record after each agent.boot.
# "" = <data_dir>/device.crt.
cert = %q
# tpm: and ecc608: keys sign slowly, so they sign a binding for an in-memory session key this often,
# and the session key signs the records. "0s" = the hardware key signs every record. 1s to 168h.
session_rotation = %q
# Cores the agent may use when it is busy (a burst to sign). At light load it runs on one: waking
# idle cores for each packet costs more CPU than it saves. 0 = all the cores there are; 1 to %d.
# The GOMAXPROCS environment variable, when set, overrides this.
cpus = %d

[store]
# Outbox database file (absolute path). "" = <data_dir>/outbox.db.
path = %q
# Most disk space the outbox may use; the oldest unsent records are dropped beyond it, and the
# drop is recorded. At least %s.
max_bytes = %q

[pipeline]
# A GNSS fix older than this is not stamped on records. More than 0s, at most %s.
location_max_age = %q
# Parallel signers. 0 = one per CPU; at most %d.
sign_workers = %d
# Records written per disk commit (fewer commits spare the SD card). 1 to %d.
batch_max = %d
# Observations buffered before drivers have to wait. 1 to %d.
queue_len = %d
# Durability window: signed records wait up to this long to be written to disk together (sooner
# when batch_max of them wait), and uplink acknowledgements wait to ride along with them. Each commit
# rewrites five to seven 4 KiB pages whatever it holds, so at low rates the window stretches: one that
# ends holding fewer than commit_min_records records waits for more (and commits as soon as they are
# there), but never past commit_interval_max after it opened.
# What a power cut or crash can cost: the records signed in the last commit_interval or, at a trickle,
# fewer than commit_min_records records signed in the last commit_interval_max (they were never sent,
# nor reported stored, and the chain goes on from the last stored record); and the acknowledgements
# of the last 2 × the longest window (those records are sent again; receivers drop the duplicates).
# Nothing already reported stored is lost. With the defaults a commit holds at least 20 records
# unless 30 s pass, and the daemon writes ~1.6 KB per record at 1 record/s (a 19 s window; a 2 s
# one wrote ~9 KB), ~1.4 KB at 10/s and ~0.6 KB at 100/s (both 2 s windows). "0s" = write each
# batch at once (two fdatasyncs per batch and per acknowledgement, tens of KB per record at a
# trickle; no stretching). 0s to %s.
commit_interval = %q
# 1 = never stretch the window. 1 to %d.
commit_min_records = %d
# At most %s; not above commit_interval = never stretch.
commit_interval_max = %q

[log]
# Least important level logged: %s.
level = %q
# %s. "auto" = JSON under systemd (or when not on a terminal), text on a terminal.
format = %q

# Drivers: one [[drivers.FAMILY]] block per instance. Every name must be unique across all drivers
# (1 to 32 of a-z, 0-9, "_", ".", "-"); it is the "source" of the records that driver produces.
#
# Simulated sources, for trying the agent without hardware. Keys:
#   name      required
#   kind      required: %s
#   interval  time between observations; default "%s"; %s to %s (counter: from %s)
#   nmea_file gnss only: NMEA 0183 file to replay; "" = built-in track
#   dir       camera only: where segments are written; "" = <data_dir>/sim-camera
#   count     stop after this many observations; 0 = no limit
#
#[[drivers.sim]]
#name = "sim-gps"
#kind = "gnss"
#interval = "1s"
#
#[[drivers.sim]]
#name = "sim-gateway"
#kind = "lora"
#interval = "2s"
#count = 100
%s[uplinks.file]
# Write records to a spool directory as CBOR sequence files (USB export, testing).
enabled = %t
# Spool directory (absolute path). "" = <data_dir>/spool.
dir = %q
# Start a new spool file beyond this size. At least %s.
rotate_bytes = %q
# Also start a new file after this long. "0s" = by size only; otherwise at least %s.
rotate_interval = %q
`,
		d.Version,
		d.Device.Key, d.Device.DataDir, d.Device.Cert, d.Device.SessionRotation.String(), maxCPUs, d.Device.CPUs,
		d.Store.Path, minStoreBytes, d.Store.MaxBytes.String(),
		formatDuration(maxLocationMaxAge), d.Pipeline.LocationMaxAge.String(),
		maxSignWorkers, d.Pipeline.SignWorkers,
		maxBatch, d.Pipeline.BatchMax,
		maxQueueLen, d.Pipeline.QueueLen,
		formatDuration(maxCommitInterval), d.Pipeline.CommitInterval.String(),
		maxBatch, d.Pipeline.CommitMinRecords,
		formatDuration(maxCommitInterval), d.Pipeline.CommitIntervalMax.String(),
		quoteList(logLevels), d.Log.Level,
		quoteList(logFormats), d.Log.Format,
		quoteList(simKinds), formatDuration(simDefaultInterval()), formatDuration(minSimInterval),
		formatDuration(maxSimInterval), formatDuration(minCounterInterval),
		hardwareTOML(),
		d.Uplinks.File.Enabled, d.Uplinks.File.Dir, minRotateBytes, d.Uplinks.File.RotateBytes.String(),
		formatDuration(minRotateInterval), d.Uplinks.File.RotateInterval.String(),
	)
	b.WriteString(mqttTOML(d.Uplinks.MQTT))
	b.WriteString(p2pTOML(d.Uplinks.P2P))
	b.WriteString(statusTOML(d.Status))
	return withBoards(b.String())
}

func simDefaultInterval() time.Duration {
	var s Sim
	s.setDefaults()
	return s.Interval.Duration
}
