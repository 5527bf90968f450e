package doctor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/status"
)

// Host is what the checks may touch of the machine. Zero fields take the
// real machine's (see Defaults); tests point them at their own files.
type Host struct {
	ServiceUser string // the daemon's user; "" means "edge-agent"
	Passwd      string // "" means /etc/passwd
	Group       string // "" means /etc/group
	Mounts      string // "" means /proc/mounts
	// Statfs describes the filesystem holding a path; nil means status.StatDisk.
	Statfs func(path string) (status.Disk, error)
	// KernelClock reads the NTP sync state; nil means status.KernelClock.
	KernelClock func() (status.Clock, error)
	// Dial opens TCP connections to brokers and peers; nil means a
	// net.Dialer with DialTimeout.
	Dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	DialTimeout time.Duration // 0 means 5s
	Now         func() time.Time
}

// withDefaults fills the zero fields.
func (h Host) withDefaults() Host {
	if h.ServiceUser == "" {
		h.ServiceUser = "edge-agent"
	}
	if h.Passwd == "" {
		h.Passwd = "/etc/passwd"
	}
	if h.Group == "" {
		h.Group = "/etc/group"
	}
	if h.Mounts == "" {
		h.Mounts = "/proc/mounts"
	}
	if h.Statfs == nil {
		h.Statfs = status.StatDisk
	}
	if h.KernelClock == nil {
		h.KernelClock = status.KernelClock
	}
	if h.DialTimeout <= 0 {
		h.DialTimeout = 5 * time.Second
	}
	if h.Dial == nil {
		d := &net.Dialer{Timeout: h.DialTimeout}
		h.Dial = d.DialContext
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	return h
}

// account is a user as the passwd and group files describe it; doctor
// parses them itself because the user running doctor (often root) is not the
// user the daemon runs as, and os/user cannot list supplementary groups of
// another user without cgo.
type account struct {
	name     string
	uid, gid int
	groups   map[int]bool // primary and supplementary
}

// errNoUser is returned by lookupUser when the passwd file has no such user.
var errNoUser = errors.New("no such user")

func (h *Host) lookupUser(name string) (*account, error) {
	var acct *account
	err := scanColon(h.Passwd, func(f []string) bool {
		if len(f) < 4 || f[0] != name {
			return true
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			return true
		}
		acct = &account{name: name, uid: uid, gid: gid, groups: map[int]bool{gid: true}}
		return false
	})
	if err != nil {
		return nil, err
	}
	if acct == nil {
		return nil, fmt.Errorf("doctor: user %s: %w", name, errNoUser)
	}
	err = scanColon(h.Group, func(f []string) bool {
		if len(f) < 4 {
			return true
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			return true
		}
		for _, m := range strings.Split(f[3], ",") {
			if m == name {
				acct.groups[gid] = true
			}
		}
		return true
	})
	return acct, err
}

// groupName names gid from the group file, or returns it as a number.
func (h *Host) groupName(gid int) string {
	name := strconv.Itoa(gid)
	scanColon(h.Group, func(f []string) bool {
		if len(f) >= 3 && f[2] == strconv.Itoa(gid) {
			name = f[0]
			return false
		}
		return true
	})
	return name
}

// scanColon calls fn with the fields of each line of a passwd-style file
// until fn returns false.
func scanColon(path string, fn func([]string) bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("doctor: read %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !fn(strings.Split(line, ":")) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("doctor: read %s: %w", path, err)
	}
	return nil
}

// Access bits, as in the mode's rwx triplets.
const (
	accRead  = 4
	accWrite = 2
	accList  = 1 // execute: on a directory, reaching its entries
)

// canAccess reports whether acct may read/write a file with fi's owner and
// mode, by the classic owner/group/other rule (root may do anything; ACLs
// are not consulted).
func canAccess(acct *account, fi fs.FileInfo, want uint32) bool {
	if acct.uid == 0 {
		return true
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true // cannot tell; do not accuse
	}
	perm := uint32(fi.Mode().Perm())
	switch {
	case int(st.Uid) == acct.uid:
		return perm>>6&want == want
	case acct.groups[int(st.Gid)]:
		return perm>>3&want == want
	}
	return perm&want == want
}

func fileGID(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Gid)
	}
	return -1
}

func fileUID(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// mountOf returns the /proc/mounts entry with the longest mount point that
// contains path: the filesystem path lives on.
func (h *Host) mountOf(path string) (device, point string, options []string, err error) {
	f, err := os.Open(h.Mounts)
	if err != nil {
		return "", "", nil, fmt.Errorf("doctor: read %s: %w", h.Mounts, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 {
			continue
		}
		mp := unescapeMount(fields[1])
		if !within(path, mp) || len(mp) < len(point) {
			continue
		}
		device, point, options = fields[0], mp, strings.Split(fields[3], ",")
	}
	return device, point, options, sc.Err()
}

// unescapeMount undoes the octal escapes /proc/mounts uses for spaces and
// other special characters in mount points.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func within(path, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == dir || strings.HasPrefix(path, dir+"/")
}
