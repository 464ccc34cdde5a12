package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"

	"github.com/tokengate/tokengate/keys"
)

// Soak bounds: one round is soakStreams requests opened at once; the whole
// round must finish within soakRoundTimeout.
const (
	soakStreams      = 10000
	soakConns        = 4
	soakRoundTimeout = 30 * time.Second
	// soakHold is how long Envoy holds each request before ext_authz.
	soakHold = 2 * time.Second
)

// h2cClients returns n HTTP/2 clients that speak h2c (HTTP/2 over
// cleartext with prior knowledge, which Envoy's codec_type AUTO detects),
// each over its own TCP connection once warmed up.
func h2cClients(n int) []*http.Client {
	cs := make([]*http.Client, n)
	for i := range cs {
		cs[i] = &http.Client{Transport: &http2.Transport{
			AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
		}}
	}
	return cs
}

// envoyAdminStats reads Envoy's counters and gauges whose names match the
// regular expression re from its admin /stats.
func envoyAdminStats(admin, re string) (map[string]int64, error) {
	resp, err := http.Get(admin + "/stats?filter=" + re)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(val, 10, 64); err == nil {
			out[name] = n
		}
	}
	return out, sc.Err()
}

// envoyAdminStat reads one Envoy counter or gauge.
func envoyAdminStat(t *testing.T, admin, name string) int64 {
	t.Helper()
	st, err := envoyAdminStats(admin, "^"+regexp.QuoteMeta(name)+"$")
	require.NoError(t, err)
	v, ok := st[name]
	require.True(t, ok, "Envoy has no stat %s", name)
	return v
}

// soakEnvoyConfig lifts the two limits of the shipped Envoy template that
// cap concurrency well below soakStreams (see TestSoakThroughEnvoy): it
// lets each downstream HTTP/2 connection carry 100000 streams and raises
// every cluster's circuit breakers to 100000. It also raises the ext_authz
// timeout from 3s to 120s: all soakStreams requests arrive at once and
// queue, and on a slow machine (the race detector, other tests running)
// the last would wait past 3s and fail on time rather than on a decision.
//
// And it holds every request soakHold before it reaches ext_authz (Envoy's
// fault filter), so that the streams are in flight at Envoy together:
// without it, Envoy answers them as fast as the client opens them and the
// concurrency measured is the client's.
func soakEnvoyConfig(cfg []byte) ([]byte, error) {
	filters := regexp.MustCompile(`(?m)^( +)http_filters:\n`)
	if n := len(filters.FindAll(cfg, -1)); n != 1 {
		return nil, fmt.Errorf("want one http_filters list, found %d", n)
	}
	cfg = filters.ReplaceAll(cfg, []byte("${0}${1}- name: envoy.filters.http.fault\n"+
		"${1}  typed_config:\n"+
		"${1}    \"@type\": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault\n"+
		"${1}    delay: {fixed_delay: "+soakHold.String()+", percentage: {numerator: 100, denominator: HUNDRED}}\n"))
	grpcTimeout := regexp.MustCompile(`(?m)^( +envoy_grpc: \{ cluster_name: tokengate \}\n +)timeout: 3s\n`)
	if n := len(grpcTimeout.FindAll(cfg, -1)); n != 1 {
		return nil, fmt.Errorf("want one ext_authz gRPC service with timeout 3s, found %d", n)
	}
	cfg = grpcTimeout.ReplaceAll(cfg, []byte("${1}timeout: 120s\n"))
	hcm := regexp.MustCompile(`(?m)^( +)stat_prefix: ingress\n`)
	m := hcm.FindAllSubmatch(cfg, -1)
	if len(m) != 1 {
		return nil, fmt.Errorf("want one HTTP connection manager with stat_prefix ingress, found %d", len(m))
	}
	// Should the template come to set either itself, this edit would
	// duplicate a key: say so rather than start a broken Envoy.
	if regexp.MustCompile(`(?m)^`+string(m[0][1])+`http2_protocol_options:`).Match(cfg) || strings.Contains(string(cfg), "circuit_breakers:") {
		return nil, errors.New("the Envoy template now sets http2_protocol_options or circuit_breakers itself: update soakEnvoyConfig")
	}
	cfg = hcm.ReplaceAll(cfg, []byte("${0}${1}http2_protocol_options: {max_concurrent_streams: 100000}\n"))
	cluster := regexp.MustCompile(`(?m)^( +)connect_timeout: .*\n`)
	if n := len(cluster.FindAll(cfg, -1)); n < 2 {
		return nil, fmt.Errorf("want the tokengate and upstream clusters (connect_timeout), found %d", n)
	}
	return cluster.ReplaceAll(cfg, []byte("${0}${1}circuit_breakers:\n${1}  thresholds:\n"+
		"${1}  - {max_connections: 100000, max_pending_requests: 100000, max_requests: 100000}\n")), nil
}

// envoyAnswer is one response through Envoy as the resilience tests judge it.
type envoyAnswer struct {
	status int
	// upstream: Envoy's router forwarded the request (it adds
	// x-envoy-upstream-service-time to upstream responses only, never to
	// local replies such as an ext_authz denial or failure).
	upstream   bool
	desc       string // error_description of a JSON denial body
	retryAfter string
	err        error
	latency    time.Duration
}

func (a envoyAnswer) String() string {
	switch {
	case a.err != nil:
		return "error: " + a.err.Error()
	case a.upstream:
		return fmt.Sprintf("%d from upstream", a.status)
	}
	return fmt.Sprintf("%d %s", a.status, a.desc)
}

// askEnvoy sends GET url with tok as bearer token and judges the answer.
func askEnvoy(ctx context.Context, client *http.Client, url, tok string) envoyAnswer {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return envoyAnswer{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		return envoyAnswer{err: err, latency: time.Since(start)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	a := envoyAnswer{
		status:     resp.StatusCode,
		upstream:   resp.Header.Get("X-Envoy-Upstream-Service-Time") != "",
		retryAfter: resp.Header.Get("Retry-After"),
		err:        err,
		latency:    time.Since(start),
	}
	var denial struct {
		Description string `json:"error_description"`
	}
	if !a.upstream && json.Unmarshal(body, &denial) == nil {
		a.desc = denial.Description
	}
	return a
}

// allowed reports whether the answer is the upstream's: tokengate let the
// request through. The sample server answers a bare GET /mcp with a 4xx of
// its own, which is fine; 401, 403 and 5xx are never the upstream's here.
func (a envoyAnswer) allowed() bool {
	return a.err == nil && a.upstream && a.status < 500 &&
		a.status != http.StatusUnauthorized && a.status != http.StatusForbidden
}

// soakClass is one kind of token in the soak mix: valid ones must be let
// through, the others denied with 401 and exactly wantDesc.
type soakClass struct {
	name     string
	tokens   []string
	wantDesc string // "" for a valid token
}

// tokengateRSS is the resident set size of the tokengate process in bytes.
func tokengateRSS(t *testing.T, e *env) int64 {
	t.Helper()
	pid, err := e.stack.ProcessID("tokengate")
	require.NoError(t, err)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/PID/status")
	return 0
}

// goroutines is tokengate's go_goroutines metric.
func (e *env) goroutines(t *testing.T) int {
	t.Helper()
	v, ok := e.scrape(t, "go_goroutines")[""]
	require.True(t, ok, "no go_goroutines metric")
	return int(v)
}

// liveHeap forces a garbage collection in tokengate (through its pprof
// heap profile) and returns the heap then allocated, in bytes.
func (e *env) liveHeap(t *testing.T) int64 {
	t.Helper()
	resp, err := http.Get(e.stack.TokengateHTTP() + "/debug/pprof/heap?gc=1")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	v, ok := e.scrape(t, "go_memstats_heap_alloc_bytes")[""]
	require.True(t, ok, "no go_memstats_heap_alloc_bytes metric")
	return int64(v)
}

// soakRound is the outcome of one round.
type soakRound struct {
	answers    []envoyAnswer
	classes    []int // answers[i] is for classes[classes[i]]
	peakActive int64 // Envoy's downstream_rq_active, sampled
	elapsed    time.Duration
}

// runSoakRound opens soakStreams requests at once, spread over the clients
// (so over soakConns HTTP/2 connections), the i-th with a token of class
// i mod len(classes), and waits for every answer. A sampler reads Envoy's
// active-request gauge meanwhile.
func runSoakRound(t *testing.T, e *env, clients []*http.Client, classes []soakClass) soakRound {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), soakRoundTimeout)
	defer cancel()
	r := soakRound{answers: make([]envoyAnswer, soakStreams), classes: make([]int, soakStreams)}
	url := e.stack.EnvoyURL() + "/mcp"

	var peak atomic.Int64
	samplerDone := make(chan struct{})
	stopSampler := make(chan struct{})
	go func() {
		defer close(samplerDone)
		for {
			if st, err := envoyAdminStats(e.stack.EnvoyAdminURL(), `^http\.ingress\.downstream_rq_active$`); err == nil {
				if v := st["http.ingress.downstream_rq_active"]; v > peak.Load() {
					peak.Store(v)
				}
			}
			select {
			case <-stopSampler:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range soakStreams {
		c := i % len(classes)
		r.classes[i] = c
		tok := classes[c].tokens[(i/len(classes))%len(classes[c].tokens)]
		client := clients[i%len(clients)]
		wg.Go(func() {
			<-start
			r.answers[i] = askEnvoy(ctx, client, url, tok)
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	r.elapsed = time.Since(began)
	close(stopSampler)
	<-samplerDone
	r.peakActive = peak.Load()
	require.NoError(t, ctx.Err(), "the round did not finish within %v", soakRoundTimeout)
	return r
}

// check asserts that every answer of the round is right and returns its
// latency percentiles.
func (r soakRound) check(t *testing.T, classes []soakClass) (p50, p90, p99, pmax time.Duration) {
	t.Helper()
	var wrong, fivexx int
	var examples []string
	lat := make([]time.Duration, 0, len(r.answers))
	for i, a := range r.answers {
		lat = append(lat, a.latency)
		c := classes[r.classes[i]]
		if a.status >= 500 || a.err != nil {
			fivexx++
		}
		ok := a.allowed()
		if c.wantDesc != "" {
			ok = a.err == nil && !a.upstream && a.status == http.StatusUnauthorized && a.desc == c.wantDesc
		}
		if !ok {
			wrong++
			if len(examples) < 10 {
				examples = append(examples, c.name+": "+a.String())
			}
		}
	}
	assert.Zero(t, wrong, "wrong answers, for example %v", examples)
	assert.Zero(t, fivexx, "5xx answers or transport errors")
	slices.Sort(lat)
	at := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	return at(0.50), at(0.90), at(0.99), lat[len(lat)-1]
}

// TestSoakThroughEnvoy opens 10,000 HTTP/2 streams at once through the real
// Envoy, over four h2c connections, which holds each for soakHold before
// ext_authz so that all of them are in flight together (the log shows
// Envoy's peak of active requests), with a mix of valid, expired,
// wrong-audience and garbage tokens, in two identical rounds. Every valid
// token must reach the upstream and every other one be denied with 401 and
// its own error_description; no answer may be a 5xx. After each round
// tokengate's goroutines must come back to their level before the soak (plus
// those of the extra gRPC connections Envoy opened to it during the burst),
// and after the second round its live heap and its resident memory must come
// back to where they were after the first.
//
// The shipped Envoy template caps such a burst at about 1,000 requests in
// flight: Envoy advertises SETTINGS_MAX_CONCURRENT_STREAMS 1024 on each
// downstream HTTP/2 connection (its default), and the tokengate cluster's
// default circuit breaker (max_requests 1024) turns every further
// concurrent Check into an ext_authz error, so a 503. The soak runs Envoy on
// the template with both limits raised (soakEnvoyConfig).
func TestSoakThroughEnvoy(t *testing.T) {
	e := startEnv(t, envOptions{
		// After the routes, a top-level server section: /debug/pprof,
		// whose heap profile forces a garbage collection (liveHeap).
		routes: func(*env) string { return "server:\n  pprof: true\n" },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, e.stack.RestartEnvoyWith(ctx, soakEnvoyConfig))
	admin := e.stack.EnvoyAdminURL()

	var valid []string
	for i := range 16 {
		sub := "soak-" + strconv.Itoa(i)
		valid = append(valid,
			e.mint(t, "rs", "RS256", func(o *keys.MintOptions) { o.Subject = sub }),
			e.mint(t, "es", "ES256", func(o *keys.MintOptions) { o.Subject = sub }))
	}
	classes := []soakClass{
		{name: "valid", tokens: valid},
		{name: "valid", tokens: valid},
		{name: "valid", tokens: valid},
		{name: "expired", wantDesc: "token_expired", tokens: []string{
			e.mint(t, "es", "ES256", func(o *keys.MintOptions) { o.Now = time.Now().Add(-3 * time.Hour) }),
		}},
		{name: "wrong audience", wantDesc: "audience_mismatch", tokens: []string{
			e.mint(t, "rs", "RS256", func(o *keys.MintOptions) { o.Audience = []string{"https://elsewhere.example/mcp"} }),
		}},
		{name: "garbage", wantDesc: "token_malformed", tokens: []string{"not-a-jwt", "Zm9vYmFy", "a.b"}},
	}

	clients := h2cClients(soakConns)
	for _, c := range clients {
		// One request each first: the client learns Envoy's settings and
		// then keeps its one connection for the burst.
		a := askEnvoy(ctx, c, e.stack.EnvoyURL()+"/mcp", valid[0])
		require.True(t, a.allowed(), "warm-up: %v", a)
	}
	// A first, unmeasured burst fills Envoy's connection pools (to the
	// upstream, and the extra gRPC connections to tokengate) and tokengate's
	// token cache, so that the two measured rounds are alike.
	warm := runSoakRound(t, e, clients, classes)
	warm.check(t, classes)
	t.Logf("warm-up round: %d streams answered in %v; Envoy's peak of active requests %d",
		soakStreams, warm.elapsed.Round(time.Millisecond), warm.peakActive)
	eventually(t, "Envoy has no request in flight", func() bool {
		return envoyAdminStat(t, admin, "http.ingress.downstream_rq_active") == 0
	})
	cxBefore := envoyAdminStat(t, admin, "http.ingress.downstream_cx_total")
	authzConnsBefore := envoyAdminStat(t, admin, "cluster.tokengate.upstream_cx_active")
	baseGoroutines := e.goroutines(t)
	baseRSS := e.settledRSS(t)

	var live, rss [2]int64
	for round := range 2 {
		r := runSoakRound(t, e, clients, classes)
		p50, p90, p99, pmax := r.check(t, classes)
		t.Logf("round %d: %d streams opened at once over %d h2c connections, answered in %v (%.0f req/s); Envoy's peak of active requests %d; latency p50 %v p90 %v p99 %v max %v",
			round+1, soakStreams, soakConns, r.elapsed.Round(time.Millisecond), float64(soakStreams)/r.elapsed.Seconds(),
			r.peakActive, p50.Round(time.Millisecond), p90.Round(time.Millisecond), p99.Round(time.Millisecond), pmax.Round(time.Millisecond))

		// Goroutines come back: grpc-go serves each connection with three
		// goroutines (reader, writer, keepalive), and Envoy keeps the
		// extra connections it opened to tokengate during the burst.
		extraConns := envoyAdminStat(t, admin, "cluster.tokengate.upstream_cx_active") - authzConnsBefore
		allowed := baseGoroutines + 3*int(extraConns) + 5
		var g int
		eventually(t, "tokengate's goroutines return to their level before the soak", func() bool {
			g = e.goroutines(t)
			return g <= allowed
		})
		live[round] = e.liveHeap(t)
		if round == 0 {
			rss[0] = e.settledRSS(t)
		} else {
			// The resident memory comes back to where it was after the
			// first round (the Go runtime returns freed memory to the
			// system in the background, so this is waited for).
			limit := rss[0] + max(rss[0]/5, 16<<20)
			var ok bool
			rss[1], ok = e.rssBackTo(t, limit)
			assert.True(t, ok, "tokengate's RSS keeps growing: %.1f MiB after the second round, %.1f MiB after the first",
				float64(rss[1])/(1<<20), float64(rss[0])/(1<<20))
		}
		t.Logf("round %d: tokengate goroutines %d (before the soak %d, %d extra gRPC connections from Envoy); live heap %.1f MiB; RSS %.1f MiB (before the soak %.1f MiB)",
			round+1, g, baseGoroutines, extraConns, float64(live[round])/(1<<20), float64(rss[round])/(1<<20), float64(baseRSS)/(1<<20))
	}
	// The second, identical round reuses what the first one left: the live
	// heap does not ratchet up.
	assert.LessOrEqual(t, live[1], live[0]+max(live[0]/5, 4<<20), "tokengate's live heap keeps growing")
	assert.Equal(t, cxBefore, envoyAdminStat(t, admin, "http.ingress.downstream_cx_total"),
		"the burst opened more downstream connections than the clients' %d", soakConns)
	assert.Zero(t, envoyAdminStat(t, admin, "http.ingress.ext_authz.error"), "ext_authz errors (Check failed or overflowed)")
}

// settledRSS forces garbage collections in tokengate until its resident
// memory stops shrinking (three readings 250ms apart within 1 MiB, at most
// 40 readings: the Go runtime returns freed memory to the system in the
// background) and returns it.
func (e *env) settledRSS(t *testing.T) int64 {
	t.Helper()
	var last []int64
	for range 40 {
		e.liveHeap(t)
		last = append(last, tokengateRSS(t, e))
		if n := len(last); n >= 3 && max(last[n-1], last[n-2], last[n-3])-min(last[n-1], last[n-2], last[n-3]) <= 1<<20 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	return last[len(last)-1]
}

// rssBackTo forces garbage collections in tokengate until its resident
// memory is at most limit (at most 40 readings 250ms apart) and returns
// the last reading and whether it was.
func (e *env) rssBackTo(t *testing.T, limit int64) (int64, bool) {
	t.Helper()
	var rss int64
	for range 40 {
		e.liveHeap(t)
		if rss = tokengateRSS(t, e); rss <= limit {
			return rss, true
		}
		time.Sleep(250 * time.Millisecond)
	}
	return rss, false
}
