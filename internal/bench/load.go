package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// doFunc sends request number i and reports whether the answer was the
// expected one.
type doFunc func(ctx context.Context, i int) error

// closedLoop runs workers that each send the next request as soon as the
// previous one is answered, for d: the saturation throughput.
func closedLoop(ctx context.Context, workers int, d time.Duration, do doFunc) result {
	var next atomic.Int64
	var errs atomic.Int64
	lat := make([][]time.Duration, workers)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			mine := make([]time.Duration, 0, 1<<14)
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				t0 := time.Now()
				if err := do(context.Background(), i); err != nil {
					errs.Add(1)
				}
				mine = append(mine, time.Since(t0))
			}
			lat[w] = mine
		})
	}
	wg.Wait()
	r := result{Elapsed: time.Since(start), Errors: int(errs.Load())}
	for _, l := range lat {
		r.Latencies = append(r.Latencies, l...)
	}
	r.Requests = len(r.Latencies)
	return r
}

// openLoop sends requests at a fixed rate for d, whatever the answers do.
// Each latency is measured from the request's scheduled send time, so a
// server that stalls is charged for every request it delayed (no
// coordinated omission). maxInFlight bounds the senders.
func openLoop(ctx context.Context, rate float64, d time.Duration, maxInFlight int, do doFunc) result {
	n := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	lat := make([]time.Duration, n)
	var errs atomic.Int64
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		// A pacer woken late starts every request already due at once: a
		// small batch, each still timed from its own scheduled time.
		scheduled := start.Add(time.Duration(i) * interval)
		waitUntil(scheduled)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := do(ctx, i); err != nil {
				errs.Add(1)
			}
			lat[i] = time.Since(scheduled)
		})
	}
	wg.Wait()
	return result{Requests: n, Errors: int(errs.Load()), Elapsed: time.Since(start), Latencies: lat}
}
