package status_test

import (
	"os"
	"syscall"
)

func setUmask(m int) int { return syscall.Umask(m) }

func statGID(fi os.FileInfo) int { return int(fi.Sys().(*syscall.Stat_t).Gid) }
