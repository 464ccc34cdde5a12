// Command bench is tokengate's load harness (`make bench`). It measures, on
// this machine and in one run: Check over gRPC against tokengate and a no-op
// ext_authz server (hot and cold tokens, saturation and fixed rate), the same
// requests through one Envoy with no auth, Envoy's own jwt_authn and
// ext_authz to tokengate, and introspection cached and uncached. It rewrites
// the generated section of docs/benchmarks.md.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tokengate/tokengate/internal/envoycfg"
	"github.com/tokengate/tokengate/keys"
)

const (
	issuer     = "https://bench.issuer"
	fillIssuer = "https://fill.bench.issuer"
	audience   = "https://bench.example/mcp"
)

type options struct {
	sections     sections
	profile      string
	memTokens    int
	baseline     string
	keep         bool
	duration     time.Duration
	workers      int
	rate         float64
	coldTokens   int
	hotTokens    int
	idpDelay     time.Duration
	introRate    float64
	out          string
	tokengateBin string
}

func main() {
	var o options
	noop := flag.String("noop", "", "run as the no-op ext_authz server on ADDR (used by the harness itself)")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each measured run (cut into slices that take turns)")
	flag.IntVar(&o.workers, "workers", 32, "concurrent requests in saturation runs")
	flag.Float64Var(&o.rate, "rate", 2000, "requests per second in fixed-rate runs")
	flag.IntVar(&o.coldTokens, "cold-tokens", 12000, "distinct RS256 tokens for the cold saturation run")
	flag.IntVar(&o.hotTokens, "hot-tokens", 300, "distinct tokens repeated in hot runs")
	flag.DurationVar(&o.idpDelay, "idp-delay", 20*time.Millisecond, "introspection server's own delay")
	flag.Float64Var(&o.introRate, "intro-rate", 200, "requests per second in introspection runs")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "report to rewrite (between the load markers)")
	flag.StringVar(&o.tokengateBin, "tokengate", "bin/tokengate", "tokengate binary")
	only := flag.String("sections", strings.Join(allSections, ","), "sections to run, comma-separated (a partial run writes the report only with an explicit -out)")
	flag.StringVar(&o.profile, "profile", "", "write tokengate's CPU and allocation profiles of the gRPC saturation runs to DIR (turns server.pprof on)")
	flag.StringVar(&o.baseline, "baseline", "", "also measure this tokengate binary in the gRPC section, interleaved with -tokengate (before/after comparisons)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (configurations, keys, process logs) and print its path")
	flag.IntVar(&o.memTokens, "mem-tokens", 100000, "distinct EdDSA tokens cached for the memory measurement")
	flag.StringVar(&tokenShape, "token-shape", "plain", "shape of the gRPC section's tokens: plain, or keycloak (about 1.2 KB, as Keycloak 26 issues them)")
	flag.Parse()
	var err error
	if o.sections, err = parseSections(*only); err != nil {
		fmt.Fprintln(os.Stderr, "bench: -sections:", err)
		os.Exit(2)
	}
	outSet := false
	flag.Visit(func(f *flag.Flag) { outSet = outSet || f.Name == "out" })
	if !o.sections.all() && !outSet {
		o.out = "" // a partial run never overwrites the report by default
	}
	if *noop != "" {
		if err := serveNoop(*noop); err != nil {
			fmt.Fprintln(os.Stderr, "noop:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// report collects the sections of the generated Markdown.
type report struct{ b bytes.Buffer }

func (r *report) printf(format string, a ...any) {
	fmt.Fprintf(&r.b, format, a...)
	fmt.Printf(format, a...)
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "tokengate-bench")
	if err != nil {
		return err
	}
	if o.keep {
		defer fmt.Printf("work directory kept: %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	sec := o.sections
	var envoyBin string
	if sec.has("envoy") {
		if envoyBin, err = envoycfg.Binary(); err != nil {
			return err
		}
	}
	tokengateBin, err := filepath.Abs(o.tokengateBin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(tokengateBin); err != nil {
		return fmt.Errorf("%s: %w (run make build)", tokengateBin, err)
	}
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return err
		}
	}
	keyDir := filepath.Join(dir, "key")
	if _, err := keys.Generate("RS256", "bench", keyDir); err != nil {
		return err
	}
	var hot, cold, coldRateTokens, profCold []string
	if sec.has("grpc") || sec.has("envoy") {
		nCold := 0
		if sec.has("grpc") {
			nCold = o.coldTokens + int(o.rate*o.duration.Seconds())
		}
		fmt.Printf("minting %d hot + %d cold RS256 tokens...\n", o.hotTokens, nCold)
		if hot, err = mintTokens(keyDir, "RS256", "bench", "hot", o.hotTokens); err != nil {
			return err
		}
		if sec.has("grpc") {
			if cold, err = mintTokens(keyDir, "RS256", "bench", "cold", o.coldTokens); err != nil {
				return err
			}
			if coldRateTokens, err = mintTokens(keyDir, "RS256", "bench", "coldrate", int(o.rate*o.duration.Seconds())); err != nil {
				return err
			}
			if o.profile != "" {
				if profCold, err = mintTokens(keyDir, "RS256", "bench", "profile", o.coldTokens); err != nil {
					return err
				}
			}
		}
	}

	var introHits atomic.Int64
	// The IdP's own time per request, from its handler's start to its
	// answer written: the delay asked for plus the sleep's overshoot on a
	// busy machine, which is not tokengate's.
	var idpMu sync.Mutex
	var idpTimes result
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		introHits.Add(1)
		t0 := time.Now()
		defer func() {
			d := time.Since(t0)
			idpMu.Lock()
			idpTimes.Latencies = append(idpTimes.Latencies, d)
			idpMu.Unlock()
		}()
		time.Sleep(o.idpDelay)
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"active":true,"sub":"svc","scope":"mcp:read","exp":%d}`, time.Now().Add(time.Hour).Unix())
	}))
	defer idp.Close()

	ports, err := freePorts(8)
	if err != nil {
		return err
	}
	pNoop, pGRPC, pHTTP, pAdmin, pNone, pJWT, pExt, pExtNoop := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6], ports[7]
	cfg := tokengateConfig(pGRPC, pHTTP, o.profile != "", "", keyDir, idp.URL, "")
	cfgPath := filepath.Join(dir, "tokengate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}

	var noopProc, tg, ev *proc
	if sec.has("grpc") || sec.has("envoy") || sec.has("introspection") {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		if noopProc, err = startProc(dir, "noop", fmt.Sprintf("127.0.0.1:%d", pNoop), nil, self, "-noop", fmt.Sprintf("127.0.0.1:%d", pNoop)); err != nil {
			return err
		}
		noopProc.addr = fmt.Sprintf("127.0.0.1:%d", pNoop)
		defer noopProc.stop()
	}
	if sec.has("grpc") || sec.has("envoy") || sec.has("introspection") {
		if tg, err = startProc(dir, "tokengate", fmt.Sprintf("http://127.0.0.1:%d/readyz", pHTTP), nil, tokengateBin, "serve", "--config", cfgPath); err != nil {
			return err
		}
		tg.addr = fmt.Sprintf("127.0.0.1:%d", pGRPC)
		defer tg.stop()
	}
	var base *proc
	if sec.has("grpc") && o.baseline != "" {
		bin, err := filepath.Abs(o.baseline)
		if err != nil {
			return err
		}
		bp, err := freePorts(2)
		if err != nil {
			return err
		}
		basePath := filepath.Join(dir, "tokengate-baseline.yaml")
		if err := os.WriteFile(basePath, []byte(tokengateConfig(bp[0], bp[1], false, "", keyDir, idp.URL, "")), 0o600); err != nil {
			return err
		}
		if base, err = startProc(dir, "tokengate-baseline", fmt.Sprintf("http://127.0.0.1:%d/readyz", bp[1]), nil, bin, "serve", "--config", basePath); err != nil {
			return err
		}
		base.addr = fmt.Sprintf("127.0.0.1:%d", bp[0])
		defer base.stop()
	}
	if sec.has("envoy") {
		jwks, err := os.ReadFile(filepath.Join(keyDir, keys.JWKSFile))
		if err != nil {
			return err
		}
		// One Envoy, four listeners with a direct_response upstream, so only
		// the authorization cost shows: ingress is ext_authz to tokengate;
		// beside it no auth, Envoy's own jwt_authn with the same key as a
		// local JWKS, and ext_authz to the harness's no-op server.
		envoyCfg, err := envoycfg.Render(envoycfg.Params{
			ListenPort: pExt, AdminPort: pAdmin, AuthzPort: pGRPC, DirectResponse: true,
			Listeners: []envoycfg.Listener{
				{Name: "none", Port: pNone},
				{Name: "jwt_authn", Port: pJWT, JWTAuthn: &envoycfg.JWTAuthn{Issuer: issuer, Audience: audience, JWKS: strings.TrimSpace(string(jwks))}},
				{Name: "ext_authz_noop", Port: pExtNoop, ExtAuthzPort: pNoop},
			},
		})
		if err != nil {
			return err
		}
		envoyPath := filepath.Join(dir, "envoy.yaml")
		if err := os.WriteFile(envoyPath, envoyCfg, 0o600); err != nil {
			return err
		}
		if ev, err = startProc(dir, "envoy", fmt.Sprintf("http://127.0.0.1:%d/ready", pAdmin), nil, envoyBin,
			"-c", envoyPath, "--disable-hot-restart", "--log-level", "error", "--concurrency", "2"); err != nil {
			return err
		}
		defer ev.stop()
	}

	var rep report
	rep.printf("<!-- load:begin (generated by `make bench`; do not edit by hand) -->\n")
	rep.printf("## Load harness (`make bench`, %s)\n\n", time.Now().UTC().Format("2006-01-02"))
	rep.printf("Machine: %s, %d cores (load generator, servers and Envoy share them); %s", cpuModel(), runtime.NumCPU(), runtime.Version())
	if envoyBin != "" {
		rep.printf("; Envoy %s", envoyVersion(envoyBin))
	}
	rep.printf(".\n")
	rep.printf("Each run lasts %s after a warm-up; saturation runs use %d concurrent requests, fixed-rate runs send %.0f req/s "+
		"and measure latency from each request's scheduled send time. Absolute figures are for this machine only; "+
		"the ratios compare columns measured in the same run.\n\n", o.duration, o.workers, o.rate)

	ctx := context.Background()
	prof := newProfiler(o.profile, pHTTP)

	if sec.has("grpc") {
		if err := grpcSection(&rep, o, tg, base, noopProc, hot, cold, coldRateTokens, prof, profCold); err != nil {
			return err
		}
	}

	if sec.has("memory") {
		if err := memorySection(&rep, o, dir, tokengateBin, keyDir, idp.URL); err != nil {
			return err
		}
	}

	if sec.has("envoy") {
		hc := newHTTPClient(o.workers)
		urls := map[string]string{
			"none":           fmt.Sprintf("http://127.0.0.1:%d/mcp", pNone),
			"jwt_authn":      fmt.Sprintf("http://127.0.0.1:%d/mcp", pJWT),
			"ext_authz":      fmt.Sprintf("http://127.0.0.1:%d/mcp", pExt),
			"ext_authz_noop": fmt.Sprintf("http://127.0.0.1:%d/mcp", pExtNoop),
		}
		type envoyRow struct {
			name      string
			sat, rate result
		}
		var rows []*envoyRow
		for _, name := range []string{"none", "jwt_authn", "ext_authz_noop", "ext_authz"} {
			closedLoop(ctx, o.workers, time.Second, hc.do(urls[name], hot))
			rows = append(rows, &envoyRow{name: name})
		}
		// The configurations take turns, slice by slice, like the gRPC runs.
		slice := o.duration / satRounds
		for range satRounds {
			for _, r := range rows {
				do := hc.do(urls[r.name], hot)
				r.sat.add(measure(ev, func() result { return closedLoop(ctx, o.workers, slice, do) }))
				r.rate.add(openLoop(ctx, o.rate, slice, 4096, do))
			}
		}
		rep.printf("### Through Envoy (direct_response upstream, hot tokens, HTTP/1.1 keep-alive)\n\n")
		rep.printf("The four listeners take turns in %d slices, at saturation and at the fixed rate.\n\n", satRounds)
		rep.printf("| Envoy configuration | req/s at saturation | × jwt_authn | p50 / p99 at %.0f/s | added p50 over no auth | errors |\n|---|---|---|---|---|---|\n", o.rate)
		labels := map[string]string{
			"none":           "(a) no auth",
			"jwt_authn":      "(b) Envoy jwt_authn, local JWKS, JWT cache on",
			"ext_authz_noop": "(c) ext_authz → no-op server (the floor of any ext_authz service)",
			"ext_authz":      "(d) ext_authz → tokengate",
		}
		for _, r := range rows {
			added := r.rate.quantile(0.5) - rows[0].rate.quantile(0.5)
			rep.printf("| %s | %.0f | %.2f | %s / %s | %s | %d |\n", labels[r.name], r.sat.rate(), r.sat.rate()/rows[1].sat.rate(),
				us(r.rate.quantile(0.5)), us(r.rate.quantile(0.99)), us(added), r.sat.Errors+r.rate.Errors)
		}
		addJWT := rows[1].rate.quantile(0.5) - rows[0].rate.quantile(0.5)
		addNoop := rows[2].rate.quantile(0.5) - rows[0].rate.quantile(0.5)
		addExt := rows[3].rate.quantile(0.5) - rows[0].rate.quantile(0.5)
		rep.printf("\next_authz → tokengate: %.2f× the req/s of ext_authz → no-op; its added p50 minus the no-op's: %s",
			rows[3].sat.rate()/rows[2].sat.rate(), us(addExt-addNoop))
		if addJWT > 0 {
			rep.printf(", %.2f× jwt_authn's (the no-op's: %.2f×)", float64(addExt)/float64(addJWT), float64(addNoop)/float64(addJWT))
		}
		rep.printf(".\n\n")
	}

	if sec.has("introspection") {
		tgClient, err := newCheckClient(fmt.Sprintf("127.0.0.1:%d", pGRPC))
		if err != nil {
			return err
		}
		opaque := func(prefix string, n int) []string {
			t := make([]string, n)
			for i := range t {
				t[i] = fmt.Sprintf("opaque-%s-%d", prefix, i)
			}
			return t
		}
		cachedTokens := opaque("cached", 100)
		cachedReqs := checkRequests(cachedTokens)
		closedLoop(ctx, 8, time.Second, tgClient.do(cachedReqs, true)) // fill the cache
		hits0 := introHits.Load()
		// The cached run takes turns with the no-op server at the same rate:
		// at a low rate both processes are idle between requests, and waking
		// them is part of every answer's latency.
		noopClient, err := newCheckClient(noopProc.addr)
		if err != nil {
			return err
		}
		closedLoop(ctx, 8, time.Second, noopClient.do(cachedReqs, true))
		var introCached, introNoop result
		for range satRounds {
			introNoop.add(openLoop(ctx, o.introRate, o.duration/satRounds, 4096, noopClient.do(cachedReqs, true)))
			introCached.add(openLoop(ctx, o.introRate, o.duration/satRounds, 4096, tgClient.do(cachedReqs, true)))
		}
		cachedIdP := introHits.Load() - hits0
		idpMu.Lock()
		idpTimes.Latencies = idpTimes.Latencies[:0]
		idpMu.Unlock()
		introUncached := openLoop(ctx, o.introRate, o.duration, 4096, tgClient.do(checkRequests(opaque("new", int(o.introRate*o.duration.Seconds()))), false))
		rep.printf("### Introspection (RFC 7662 server on loopback answering after %s)\n\n", o.idpDelay)
		rep.printf("| tokens | p50 | p95 | p99 | IdP requests | errors |\n|---|---|---|---|---|---|\n")
		rep.printf("| no-op ext_authz server at %.0f/s (the floor: generator, gRPC, wake-ups) | %s | %s | %s | — | %d |\n", o.introRate,
			us(introNoop.quantile(0.5)), us(introNoop.quantile(0.95)), us(introNoop.quantile(0.99)), introNoop.Errors)
		rep.printf("| cached (100 tokens repeated at %.0f/s) | %s | %s | %s | %d | %d |\n", o.introRate, us(introCached.quantile(0.5)), us(introCached.quantile(0.95)), us(introCached.quantile(0.99)), cachedIdP, introCached.Errors)
		rep.printf("| uncached (every token new at %.0f/s) | %s | %s | %s | %d | %d |\n", o.introRate, us(introUncached.quantile(0.5)), us(introUncached.quantile(0.95)), us(introUncached.quantile(0.99)), introUncached.Requests, introUncached.Errors)
		idpMu.Lock()
		idpP95 := idpTimes.quantile(0.95)
		idpMu.Unlock()
		rep.printf("\nThe IdP's own time per request (its handler, the %s sleep included) had a p95 of %s in the uncached run. "+
			"Uncached p95 minus the IdP's p95: %s; minus the nominal %s: %s. Both include the load generator's own latency "+
			"(the no-op row).\n", o.idpDelay, us(idpP95), us(introUncached.quantile(0.95)-idpP95), o.idpDelay, us(introUncached.quantile(0.95)-o.idpDelay))
	}
	rep.printf("<!-- load:end -->\n")

	if o.out == "" {
		return nil
	}
	return writeReport(o.out, rep.b.String())
}

// tokengateConfig is the harness's tokengate configuration: the RS256
// verifier "bench" and the introspection verifier "legacy" on one route,
// plus, when fillKeyDir is set, the EdDSA verifier "fill" (issuer
// fillIssuer) used to fill the token cache quickly. cacheSize "" keeps the
// default token cache size.
func tokengateConfig(pGRPC, pHTTP int, pprof bool, cacheSize, keyDir, idpURL, fillKeyDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "log: {level: error}\nserver: {grpc_listen: \"127.0.0.1:%d\", http_listen: \"127.0.0.1:%d\"", pGRPC, pHTTP)
	if pprof {
		b.WriteString(", pprof: true")
	}
	if cacheSize != "" {
		fmt.Fprintf(&b, ", token_cache_size: %s", cacheSize)
	}
	b.WriteString("}\nverifiers:\n")
	fmt.Fprintf(&b, "  bench: {type: jwt, issuer: %q, jwks_file: %q, algorithms: [RS256]}\n", issuer, filepath.Join(keyDir, keys.JWKSFile))
	verifiers := "bench"
	if fillKeyDir != "" {
		fmt.Fprintf(&b, "  fill: {type: jwt, issuer: %q, jwks_file: %q, algorithms: [EdDSA]}\n", fillIssuer, filepath.Join(fillKeyDir, keys.JWKSFile))
		verifiers += ", fill"
	}
	fmt.Fprintf(&b, "  legacy: {type: introspection, introspection_url: %q, client_id: bench, client_secret: s, cache_ttl: 10m}\n", idpURL+"/introspect")
	fmt.Fprintf(&b, "routes:\n  - {name: mcp, match: {path_prefix: /}, verifiers: [%s, legacy], required_scopes: [mcp:read], resource: %q}\n", verifiers, audience)
	return b.String()
}

// closedLoopN is closedLoop over exactly n requests (each token used once).
func closedLoopN(ctx context.Context, workers, n int, do doFunc) result {
	var next atomic.Int64
	var errs atomic.Int64
	lat := make([]time.Duration, n)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := do(ctx, i); err != nil {
					errs.Add(1)
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	return result{Requests: n, Errors: int(errs.Load()), Elapsed: time.Since(start), Latencies: lat}
}

// writeReport replaces the generated section of path (or appends it).
func writeReport(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s := string(old)
	begin := strings.Index(s, "<!-- load:begin")
	end := strings.Index(s, "<!-- load:end -->")
	if begin >= 0 && end > begin {
		s = s[:begin] + section + s[end+len("<!-- load:end -->\n"):]
	} else {
		if s != "" && !strings.HasSuffix(s, "\n\n") {
			s += "\n"
		}
		s += section
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func us(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func envoyVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "unknown"
	}
	s := string(out)
	if i := strings.Index(s, "version: "); i >= 0 {
		f := strings.Split(s[i+len("version: "):], "/")
		if len(f) > 1 {
			return f[1]
		}
	}
	return "unknown"
}

// mintTokens mints n distinct tokens with the key in keyDir (alg, kid), in
// parallel. Tokens of the key "fill" carry fillIssuer, the others issuer.
// tokenShape is "plain" (the harness's small tokens) or "keycloak" (about
// 1.2 KB: the claims a Keycloak 26 client-credentials access token carries).
var tokenShape = "plain"

// keycloakShape gives o the claims of a Keycloak service-account access
// token (issue 13's benchmark).
func keycloakShape(o *keys.MintOptions, i int) {
	o.Audience = append(o.Audience, "tokengate", "account")
	o.Subject = fmt.Sprintf("5f0c7a1e-3b2d-4c8e-9a61-%012d", i%1000)
	o.Scope = "mcp:read profile email"
	for k, v := range map[string]any{
		"typ": "Bearer", "azp": "mcp-agent", "client_id": "mcp-agent", "acr": "1",
		"sid":                fmt.Sprintf("b6a1c9f2-77e4-4d0a-8c3b-%012d", i),
		"allowed-origins":    []string{"https://inspector.example.com", "http://localhost:6274"},
		"realm_access":       map[string]any{"roles": []string{"default-roles-tokengate", "offline_access", "uma_authorization"}},
		"resource_access":    map[string]any{"account": map[string]any{"roles": []string{"manage-account", "manage-account-links", "view-profile"}}},
		"email_verified":     false,
		"clientHost":         "127.0.0.1",
		"clientAddress":      "127.0.0.1",
		"preferred_username": "service-account-mcp-agent",
	} {
		o.Claims[k] = v
	}
}

func mintTokens(keyDir, alg, kid, prefix string, n int) ([]string, error) {
	iss := issuer
	if kid == "fill" {
		iss = fillIssuer
	}
	tokens := make([]string, n)
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	var next atomic.Int64
	for range runtime.NumCPU() {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				o := keys.MintOptions{
					KeyFile: filepath.Join(keyDir, keys.PrivateKeyFile), Alg: alg, Kid: kid,
					Issuer: iss, Audience: []string{audience}, Subject: fmt.Sprintf("user-%d", i%1000),
					Scope: "mcp:read", TTL: 2 * time.Hour, Claims: map[string]any{"jti": fmt.Sprintf("%s-%d", prefix, i)},
				}
				if tokenShape == "keycloak" {
					keycloakShape(&o, i)
				}
				t, err := keys.Mint(o)
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				tokens[i] = t
			}
		})
	}
	wg.Wait()
	return tokens, firstErr
}

// checkClient sends CheckRequests over a few connections.
type checkClient struct{ clients []authv3.AuthorizationClient }

func newCheckClient(addr string) (*checkClient, error) {
	c := &checkClient{}
	for range 4 {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		c.clients = append(c.clients, authv3.NewAuthorizationClient(conn))
	}
	return c, nil
}

var errDenied = errors.New("denied")

// do returns a doFunc sending reqs[i] (modulo len when wrap).
func (c *checkClient) do(reqs []*authv3.CheckRequest, wrap bool) doFunc {
	return func(ctx context.Context, i int) error {
		if wrap {
			i %= len(reqs)
		}
		resp, err := c.clients[i%len(c.clients)].Check(ctx, reqs[i])
		if err != nil {
			return err
		}
		if resp.GetOkResponse() == nil {
			return errDenied
		}
		return nil
	}
}

func checkRequests(tokens []string) []*authv3.CheckRequest {
	reqs := make([]*authv3.CheckRequest, len(tokens))
	for i, t := range tokens {
		reqs[i] = checkRequest(t)
	}
	return reqs
}

// checkRequest is the CheckRequest Envoy sends for a POST /mcp with token.
func checkRequest(token string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "POST", Path: "/mcp", Host: "bench.example", Scheme: "http", Protocol: "HTTP/1.1",
			Headers: map[string]string{
				":authority": "bench.example", ":method": "POST", ":path": "/mcp",
				"authorization": "Bearer " + token, "content-type": "application/json",
				"accept": "application/json, text/event-stream", "user-agent": "bench",
			},
		}},
	}}
}

// httpClient sends requests through Envoy.
type httpClient struct{ c *http.Client }

func newHTTPClient(conns int) *httpClient {
	return &httpClient{c: &http.Client{Transport: &http.Transport{
		MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, DisableCompression: true,
	}}}
}

func (h *httpClient) do(url string, tokens []string) doFunc {
	return func(ctx context.Context, i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tokens[i%len(tokens)])
		resp, err := h.c.Do(req)
		if err != nil {
			return err
		}
		_, _ = bytes.NewBuffer(nil).ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
}
