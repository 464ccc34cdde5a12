package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tokengate/tokengate/keys"
)

// memorySection measures a fresh tokengate's memory with o.memTokens
// distinct tokens in its token cache. The tokens are EdDSA, from a second
// verifier on the same route: minting RS256 takes about 1 ms a token, and
// what a cache entry holds does not depend on the algorithm. The cache is
// sized a quarter above the fill so that no entry is evicted (a shard
// holds 1/64 of the cache, and hashing never spreads tokens exactly
// evenly); a sample of the tokens is replayed to check that they hit.
func memorySection(rep *report, o options, dir, tokengateBin, keyDir, idpURL string) error {
	n := o.memTokens
	fillDir := filepath.Join(dir, "fillkey")
	if _, err := keys.Generate("EdDSA", "fill", fillDir); err != nil {
		return err
	}
	fmt.Printf("minting %d EdDSA tokens for the memory run...\n", n)
	tokens, err := mintTokens(fillDir, "EdDSA", "fill", "fill", n)
	if err != nil {
		return err
	}
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	size := n + n/4
	cfgPath := filepath.Join(dir, "tokengate-mem.yaml")
	cfg := tokengateConfig(ports[0], ports[1], false, strconv.Itoa(size), keyDir, idpURL, fillDir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1])
	tg, err := startProc(dir, "tokengate-mem", fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1]), nil, tokengateBin, "serve", "--config", cfgPath)
	if err != nil {
		return err
	}
	defer tg.stop()
	client, err := newCheckClient(fmt.Sprintf("127.0.0.1:%d", ports[0]))
	if err != nil {
		return err
	}
	ctx := context.Background()
	rss0, _ := rssBytes(tg.pid())
	heap0, _ := metricValue(metricsURL, "go_memstats_heap_inuse_bytes")

	do := func(ctx context.Context, i int) error {
		resp, err := client.clients[i%len(client.clients)].Check(ctx, checkRequest(tokens[i]))
		if err != nil {
			return err
		}
		if resp.GetOkResponse() == nil {
			return errDenied
		}
		return nil
	}
	start := time.Now()
	fill := closedLoopN(ctx, o.workers, n, do)
	fillTime := time.Since(start)
	if fill.Errors > 0 {
		return fmt.Errorf("memory: %d of %d fill Checks failed", fill.Errors, n)
	}
	rss1, _ := rssBytes(tg.pid())
	heap1, _ := metricValue(metricsURL, "go_memstats_heap_inuse_bytes")

	// Replay every 100th token: each must be a cache hit.
	hits0, _ := metricValue(metricsURL, `tokengate_cache_total{cache="token",result="hit"}`)
	sample := 0
	for i := 0; i < n; i += 100 {
		if err := do(ctx, i); err != nil {
			return fmt.Errorf("memory: replay: %w", err)
		}
		sample++
	}
	hits1, _ := metricValue(metricsURL, `tokengate_cache_total{cache="token",result="hit"}`)

	// Hot Checks with the cache full: every collection now marks it.
	hotDo := func(ctx context.Context, i int) error { return do(ctx, i%min(o.hotTokens, n)) }
	closedLoop(ctx, o.workers, time.Second, hotDo)
	hot := measure(tg, func() result { return closedLoop(ctx, o.workers, o.duration, hotDo) })
	rss2, _ := rssBytes(tg.pid())
	heap2, _ := metricValue(metricsURL, "go_memstats_heap_inuse_bytes")

	mib := func(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }
	rep.printf("### Memory (token cache filled)\n\n")
	rep.printf("A fresh tokengate (same configuration plus an EdDSA verifier, `token_cache_size: %d`), before and after "+
		"%d Checks of distinct tokens (filled in %.1fs); %d of %d replayed tokens hit the cache. "+
		"RSS is from /proc; Go heap in use is `go_memstats_heap_inuse_bytes`.\n\n", size, n, fillTime.Seconds(), int(hits1-hits0), sample)
	rep.printf("| tokengate | RSS | Go heap in use |\n|---|---|---|\n")
	rep.printf("| started, cache empty | %s | %s |\n", mib(float64(rss0)), mib(heap0))
	rep.printf("| %d tokens cached | %s | %s |\n", n, mib(float64(rss1)), mib(heap1))
	rep.printf("| the same, after a %s hot load run | %s | %s |\n", o.duration, mib(float64(rss2)), mib(heap2))
	rep.printf("\nPer cached token: %.0f bytes of heap, %.0f bytes of RSS. With the cache full, hot Checks (%d of these tokens "+
		"repeated) ran at %.0f Check/s, %s of server CPU per Check (%d errors).\n\n",
		(heap1-heap0)/float64(n), float64(rss1-rss0)/float64(n), min(o.hotTokens, n), hot.rate(), us(hot.cpuPer()), hot.Errors)
	return nil
}

// metricValue reads one sample of a Prometheus text exposition; name
// includes the labels exactly as exposed.
func metricValue(url, name string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no sample %s", url, name)
}
