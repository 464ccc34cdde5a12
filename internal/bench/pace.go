package main

import (
	"runtime"
	"time"
)

// spinWindow is how long before a send time the pacer stops sleeping and
// spins: a little more than a kernel sleep overshoots on a loaded VM.
const spinWindow = 150 * time.Microsecond

// waitUntil returns at t, give or take a few microseconds. A plain
// time.Sleep is not precise enough for a fixed-rate generator: the Go
// runtime parks timers in the network poller with millisecond resolution,
// so at 2000 req/s requests would leave in bursts up to a millisecond late
// and every late start would count as the server's latency. waitUntil
// sleeps in the kernel until spinWindow before t, then spins, yielding to
// the senders it started.
func waitUntil(t time.Time) {
	for {
		wait := time.Until(t)
		if wait <= 0 {
			return
		}
		if wait > spinWindow {
			sleepPrecise(wait - spinWindow)
			continue
		}
		runtime.Gosched()
	}
}
