package pgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CPUOf is the user+system CPU time of pid and its descendants so far,
// from /proc (ticks of 10 ms); 0 for a process that is gone.
func CPUOf(pid int) time.Duration {
	var total int64
	var walk func(int)
	walk = func(p int) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			return
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		total += u + s
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p))
		for _, t := range tasks {
			kids, _ := os.ReadFile(t)
			for _, k := range strings.Fields(string(kids)) {
				if n, err := strconv.Atoi(k); err == nil {
					walk(n)
				}
			}
		}
	}
	walk(pid)
	return time.Duration(total) * 10 * time.Millisecond
}

// CPU is the CPU time the server (postmaster and every backend still
// running) used so far. Backends that exited are not counted: read it
// while the clients' connections are open.
func (s *Server) CPU() (time.Duration, error) {
	data, err := os.ReadFile(filepath.Join(s.Dir, "data", "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("pgtest: postmaster pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(data), "\n", 2)[0])
	if err != nil {
		return 0, fmt.Errorf("pgtest: postmaster pid: %w", err)
	}
	return CPUOf(pid), nil
}
