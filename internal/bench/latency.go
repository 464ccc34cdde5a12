package main

import (
	"slices"
	"time"
)

// result is one load run's outcome.
type result struct {
	Requests  int
	Errors    int // transport errors or unexpected answers
	Elapsed   time.Duration
	Latencies []time.Duration
	// CPU is the server process's CPU time during the run (0 if unknown).
	CPU time.Duration
}

// add merges o, a slice of the same run, into r.
func (r *result) add(o result) {
	r.Requests += o.Requests
	r.Errors += o.Errors
	r.Elapsed += o.Elapsed
	r.CPU += o.CPU
	r.Latencies = append(r.Latencies, o.Latencies...)
}

// rate is requests per second.
func (r result) rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// cpuPer is the server CPU time per request.
func (r result) cpuPer() time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Requests)
}

// quantile returns the q-quantile of the recorded latencies.
func (r result) quantile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	l := slices.Clone(r.Latencies)
	slices.Sort(l)
	i := int(q * float64(len(l)-1))
	return l[i]
}
