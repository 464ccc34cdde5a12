package main

import (
	"context"
	"fmt"
	"time"
)

// satRounds is how many slices each saturation run is cut into. The
// servers take turns slice by slice, so that a change in the machine's
// speed during the run (it is shared, and a VM) weighs on every server
// alike instead of on whichever ran at that moment.
const satRounds = 5

// measure runs f and charges p's CPU time over it to the result.
func measure(p *proc, f func() result) result {
	c0, _ := cpuTime(p.pid())
	r := f()
	c1, _ := cpuTime(p.pid())
	r.CPU = c1 - c0
	return r
}

// grpcTarget is one tokengate process under gRPC load.
type grpcTarget struct {
	label     string
	p         *proc
	c         *checkClient
	hot, cold result // saturation
	hotRate   result // fixed rate
	coldRate  result
}

// grpcSection measures Check over gRPC: the no-op server, tokengate and,
// with -baseline, a second tokengate binary, each hot and cold, at
// saturation and at a fixed rate.
func grpcSection(rep *report, o options, tg, base, noopProc *proc, hot, cold, coldRateTokens []string, prof *profiler, profCold []string) error {
	ctx := context.Background()
	noopClient, err := newCheckClient(noopProc.addr)
	if err != nil {
		return err
	}
	targets := []*grpcTarget{{label: "tokengate", p: tg}}
	if base != nil {
		targets = append(targets, &grpcTarget{label: "baseline (" + o.baseline + ")", p: base})
	}
	for _, t := range targets {
		if t.c, err = newCheckClient(t.p.addr); err != nil {
			return err
		}
	}
	hotReqs := checkRequests(hot)
	coldReqs := checkRequests(cold)
	warm := func(c *checkClient) { closedLoop(ctx, o.workers, time.Second, c.do(hotReqs, true)) }
	warm(noopClient)
	for _, t := range targets {
		warm(t.c)
	}

	var noopSat result
	slice := o.duration / satRounds
	for r := range satRounds {
		noopSat.add(measure(noopProc, func() result { return closedLoop(ctx, o.workers, slice, noopClient.do(hotReqs, true)) }))
		// Every target sees the same cold tokens: each has its own cache.
		lo, hi := r*len(coldReqs)/satRounds, (r+1)*len(coldReqs)/satRounds
		for _, t := range targets {
			t.hot.add(measure(t.p, func() result { return closedLoop(ctx, o.workers, slice, t.c.do(hotReqs, true)) }))
			t.cold.add(measure(t.p, func() result { return closedLoopN(ctx, o.workers, hi-lo, t.c.do(coldReqs[lo:hi], false)) }))
		}
	}
	// The fixed-rate runs take turns too; each cold slice has its own tokens.
	var noopRate result
	coldRateReqs := checkRequests(coldRateTokens)
	perSlice := int(o.rate * slice.Seconds())
	for r := range satRounds {
		noopRate.add(openLoop(ctx, o.rate, slice, 4096, noopClient.do(hotReqs, true)))
		lo, hi := min(r*perSlice, len(coldRateReqs)), min((r+1)*perSlice, len(coldRateReqs))
		for _, t := range targets {
			t.hotRate.add(openLoop(ctx, o.rate, slice, 4096, t.c.do(hotReqs, true)))
			t.coldRate.add(openLoop(ctx, o.rate, slice, 4096, t.c.do(coldRateReqs[lo:hi], false)))
		}
	}
	if prof != nil {
		// Profiled apart from the measured runs, which the profiler would
		// slow down.
		tgt := targets[0]
		prof.during("hot", o.duration, func() result { return closedLoop(ctx, o.workers, o.duration, tgt.c.do(hotReqs, true)) })
		prof.during("cold", time.Second, func() result {
			return closedLoopN(ctx, o.workers, len(profCold), tgt.c.do(checkRequests(profCold), false))
		})
		if err := prof.err(); err != nil {
			return err
		}
	}

	rep.printf("### gRPC Check (load generator → server directly)\n\n")
	rep.printf("The no-op row is the floor: the generator, gRPC and loopback with a server that does nothing "+
		"(a plain `grpc.NewServer()`). tokengate's own cost is its distance from that row. Saturation "+
		"and fixed-rate runs take turns in %d slices per server. CPU per Check is the server process's user+system time (10 ms ticks) "+
		"over the Checks it answered.\n\n", satRounds)
	rep.printf("| server, tokens | Check/s at saturation | × no-op | server CPU per Check | p50 / p99 at %.0f/s | added p50 over no-op | errors |\n|---|---|---|---|---|---|---|\n", o.rate)
	row := func(name string, sat, fixed result) {
		rep.printf("| %s | %.0f | %.2f | %s | %s / %s | %s | %d |\n", name, sat.rate(), sat.rate()/noopSat.rate(),
			us(sat.cpuPer()), us(fixed.quantile(0.5)), us(fixed.quantile(0.99)),
			us(fixed.quantile(0.5)-noopRate.quantile(0.5)), sat.Errors+fixed.Errors)
	}
	row("no-op ext_authz server (floor)", noopSat, noopRate)
	for _, t := range targets {
		row(fmt.Sprintf("%s, hot (%d tokens repeated, cache hits)", t.label, o.hotTokens), t.hot, t.hotRate)
		row(t.label+", cold (every token new: RS256 verify)", t.cold, t.coldRate)
	}
	rss, _ := rssBytes(tg.pid())
	rep.printf("\ntokengate RSS after these runs (≈%d tokens cached): %.1f MiB.\n\n", o.hotTokens+len(cold)+len(coldRateTokens), float64(rss)/(1<<20))
	return nil
}
