//go:build linux

package main

import (
	"syscall"
	"time"
)

// sleepPrecise blocks the calling thread in nanosleep(2), which the kernel
// ends within tens of microseconds (its timer slack), not a millisecond.
func sleepPrecise(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil)
}
