//go:build soak

package p2p

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
)

// TestSoakGossip repeats the hostile-gossip trial (a rogue peer publishing
// forged records through a relay to a watcher) SOAK_TRIALS times for
// `make soak`: records is what the watcher received (one honest record per
// trial), lost the honest records it did not get, duplicated the forged ones
// that reached it.
func TestSoakGossip(t *testing.T) {
	n := 5
	if v, err := strconv.Atoi(os.Getenv("SOAK_TRIALS")); err == nil && v > 0 {
		n = v
	}
	var failed, records, forwarded int
	for i := range n {
		ok := t.Run(fmt.Sprintf("hostile-gossip/%d", i), func(t *testing.T) {
			got, fwd := rogueTrial(t)
			records += got
			forwarded += fwd
		})
		if !ok {
			failed++
		}
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru) // three nodes in this process
	fmt.Printf("soak %-14s %6s %6s %8s %6s %10s %9s\n", "kind", "trials", "failed", "records", "lost", "duplicated", "peak RSS")
	fmt.Printf("soak %-14s %6d %6d %8d %6d %10d %7.1fMB\n", "hostile-gossip", n, failed, records, max(0, n-records), forwarded, float64(ru.Maxrss)*1024/1e6)
}
