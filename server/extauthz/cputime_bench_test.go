//go:build unix

package extauthz

import (
	"syscall"
	"testing"
)

// processCPU is the CPU time the process has used so far (all threads,
// user and system), in nanoseconds; 0 if it cannot be read.
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// reportCPU reports the CPU time per op since start as "cpu-ns/op": on a
// loaded, shared machine wall time per op includes waiting for a CPU, the
// CPU time does not (it includes the GC's work on other threads).
func reportCPU(b *testing.B, start int64) {
	if start > 0 && b.N > 0 {
		b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
	}
}
