package status

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// KernelClock asks the kernel whether an NTP client disciplines the system
// clock, without timedatectl or D-Bus: adjtimex(2) in read-only mode (modes
// 0, allowed to any user). STA_UNSYNC is set until chrony, ntpd or
// systemd-timesyncd has synchronised the clock.
func KernelClock() (Clock, error) {
	var tx unix.Timex // Modes 0: read only
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return Clock{}, fmt.Errorf("status: read kernel clock state (adjtimex): %w", err)
	}
	synced := tx.Status&unix.STA_UNSYNC == 0 && state != unix.TIME_ERROR
	const pps = unix.STA_PPSSIGNAL | unix.STA_PPSTIME
	return Clock{
		Synced:          &synced,
		MaxErrorSeconds: float64(int64(tx.Maxerror)) / 1e6, // µs
		PPS:             synced && int(tx.Status)&pps == pps,
	}, nil
}

// StatDisk reports the filesystem holding path. A failed statfs is returned
// as the error and also described in Disk.Error, so a caller building a
// document can keep the Disk as it is.
func StatDisk(path string) (Disk, error) {
	d := Disk{Path: path}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		err = fmt.Errorf("status: statfs %s: %w", path, err)
		d.Error = err.Error()
		return d, err
	}
	bs := int64(st.Bsize) // int32 on 32-bit ARM
	d.FreeBytes = int64(st.Bavail) * bs
	d.TotalBytes = int64(st.Blocks) * bs
	d.ReadOnly = int64(st.Flags)&unix.ST_RDONLY != 0
	return d, nil
}

// Seconds converts d for the document's *_seconds fields.
func Seconds(d time.Duration) *float64 {
	s := d.Seconds()
	return &s
}
