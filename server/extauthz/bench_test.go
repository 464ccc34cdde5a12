package extauthz

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tokengate/tokengate/authz"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/keys"
)

// benchNow is the benchmarks' clock and the tokens' issue time.
var benchNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// benchTokens is how many distinct RS256 tokens the benchmarks cycle
// through: a few hundred, like the active sessions of one MCP server.
const benchTokens = 256

// benchConfig is one RS256 verifier with a local public key, an
// introspection verifier, and routes shaped like an MCP deployment. {{dir}}
// is the key directory, {{size}} the token cache size, {{introspect}} the
// introspection endpoint.
const benchConfig = `
server:
  clock_skew: 60s
  token_cache_size: {{size}}
verifiers:
  idp:
    type: jwt
    issuer: https://idp.example
    public_key_file: {{dir}}/idp/public.pem
    algorithms: [RS256]
  opaque:
    type: introspection
    introspection_url: {{introspect}}
    client_id: tokengate
    client_secret: bench-secret
    cache_ttl: 1h
routes:
  - name: health
    match: {path_exact: /healthz}
    allow_anonymous: true
  - name: mcp
    match: {hosts: [mcp.example.com], path_prefix: /mcp}
    verifiers: [idp]
    required_scopes: [mcp:read]
    resource: https://mcp.example.com/mcp
    claim_headers: {x-user-email: email}
  - name: opaque
    match: {hosts: [mcp.example.com], path_prefix: /opaque}
    verifiers: [opaque]
    required_scopes: [mcp:read]
    resource: https://mcp.example.com/opaque
`

// benchFixture is the shared key directory and minted tokens: minting 256
// RS256 tokens takes a while, so every benchmark reuses them.
var benchFixture struct {
	once   sync.Once
	dir    string
	tokens []string
	err    error
}

func benchSetup(b *testing.B) (string, []string) {
	b.Helper()
	f := &benchFixture
	f.once.Do(func() {
		f.dir, f.err = os.MkdirTemp("", "tokengate-bench-")
		if f.err != nil {
			return
		}
		if _, f.err = keys.Generate("RS256", "idp-1", filepath.Join(f.dir, "idp")); f.err != nil {
			return
		}
		for i := range benchTokens {
			tok, err := keys.Mint(keys.MintOptions{
				KeyFile: filepath.Join(f.dir, "idp", keys.PrivateKeyFile), Alg: "RS256", Kid: "idp-1",
				Issuer: "https://idp.example", Audience: []string{"https://mcp.example.com/mcp"},
				Subject: fmt.Sprintf("user-%d", i), Scope: "mcp:read mcp:write", TTL: time.Hour,
				Now: benchNow, Claims: map[string]any{"email": fmt.Sprintf("user-%d@example.com", i)},
			})
			if f.err = err; err != nil {
				return
			}
			f.tokens = append(f.tokens, tok)
		}
	})
	if f.err != nil {
		b.Fatal(f.err)
	}
	return f.dir, f.tokens
}

// benchService builds a Service from benchConfig with the given token cache
// size, and a loopback introspection endpoint that answers "active".
func benchService(b *testing.B, cacheSize int) (*Service, []string) {
	b.Helper()
	dir, tokens := benchSetup(b)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"active": true, "sub": "carol", "scope": "mcp:read", "exp": benchNow.Add(time.Hour).Unix(),
		})
	}))
	b.Cleanup(idp.Close)
	yaml := strings.NewReplacer("{{dir}}", dir, "{{size}}", fmt.Sprint(cacheSize), "{{introspect}}", idp.URL).Replace(benchConfig)
	path := filepath.Join(b.TempDir(), "tokengate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := authz.Build(cfg, authz.BuildOptions{Logger: log, Now: func() time.Time { return benchNow }})
	if err != nil {
		b.Fatal(err)
	}
	return newService(p, log, nil), tokens
}

// benchRequests prebuilds one CheckRequest per token for path.
func benchRequests(path string, tokens []string) []*authv3.CheckRequest {
	reqs := make([]*authv3.CheckRequest, len(tokens))
	for i, tok := range tokens {
		reqs[i] = checkRequest("POST", "mcp.example.com", path, map[string]string{
			"authorization": "Bearer " + tok,
			"content-type":  "application/json",
			"user-agent":    "bench",
		})
	}
	return reqs
}

// runChecks calls Check on the requests round-robin and fails on any deny.
func runChecks(b *testing.B, svc *Service, reqs []*authv3.CheckRequest) {
	b.Helper()
	ctx := context.Background()
	for i := range reqs { // warm up: fill the caches
		mustAllow(b, svc, ctx, reqs[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		mustAllow(b, svc, ctx, reqs[i%len(reqs)])
		i++
	}
}

func mustAllow(b *testing.B, svc *Service, ctx context.Context, req *authv3.CheckRequest) {
	resp, _ := svc.Check(ctx, req)
	if resp.GetOkResponse() == nil {
		b.Fatalf("denied: %v", resp.GetDeniedResponse().GetBody())
	}
}

// BenchmarkCheckNoop is the floor: an anonymous route, so Check only
// matches the route and builds the allow answer.
func BenchmarkCheckNoop(b *testing.B) {
	svc, _ := benchService(b, 0)
	runChecks(b, svc, []*authv3.CheckRequest{checkRequest("GET", "mcp.example.com", "/healthz", map[string]string{
		"content-type": "application/json", "user-agent": "bench",
	})})
}

// BenchmarkCheckHot repeats the same few hundred RS256 tokens with the
// token cache on: every Check after the first per token is a cache hit.
func BenchmarkCheckHot(b *testing.B) {
	svc, tokens := benchService(b, config.DefaultTokenCacheSize)
	runChecks(b, svc, benchRequests("/mcp", tokens))
}

// BenchmarkCheckHotParallel is BenchmarkCheckHot from GOMAXPROCS
// goroutines: the cache's locking under contention.
func BenchmarkCheckHotParallel(b *testing.B) {
	svc, tokens := benchService(b, config.DefaultTokenCacheSize)
	reqs := benchRequests("/mcp", tokens)
	ctx := context.Background()
	for _, r := range reqs {
		mustAllow(b, svc, ctx, r)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			mustAllow(b, svc, ctx, reqs[i%len(reqs)])
			i += 7
		}
	})
}

// BenchmarkCheckCold verifies every token from scratch (cache disabled):
// parse, RS256 signature check, claims, scopes, answer.
func BenchmarkCheckCold(b *testing.B) {
	svc, tokens := benchService(b, 0)
	runChecks(b, svc, benchRequests("/mcp", tokens))
}

// BenchmarkCheckMiss is the first sight of a token with the cache on: a
// lookup that misses, a full verification and an insert that evicts (the
// cache holds one token, the requests cycle through all of them).
func BenchmarkCheckMiss(b *testing.B) {
	svc, tokens := benchService(b, 1)
	runChecks(b, svc, benchRequests("/mcp", tokens))
}

// BenchmarkCheckIntrospectionCached is an opaque token whose introspection
// answer is cached: no HTTP call after the first.
func BenchmarkCheckIntrospectionCached(b *testing.B) {
	svc, _ := benchService(b, config.DefaultTokenCacheSize)
	runChecks(b, svc, benchRequests("/opaque", []string{"2YotnFZFEjr1zCsicMWpAA"}))
}
