package authz

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/keys"
	"github.com/tokengate/tokengate/verify"
)

const cacheIssuer = "https://idp.example"

// cacheConfig has two JWT verifiers for one issuer (idp without audiences of
// its own, partner with its own and another key), a static verifier, and
// routes that differ in resource, scopes and verifiers.
const cacheConfig = `
verifiers:
  idp:
    type: jwt
    issuer: ` + cacheIssuer + `
    public_key_file: {{dir}}/idp/public.pem
  partner:
    type: jwt
    issuer: ` + cacheIssuer + `
    public_key_file: {{dir}}/partner/public.pem
    audiences: [api://partner]
  dev:
    type: static
    tokens:
      dev.static.token: {sub: dev, scopes: [read]}
routes:
  - name: a
    match: {path_exact: /a}
    verifiers: [idp]
    required_scopes: [read]
    resource: https://a.example/mcp
    claim_headers: {x-email: email}
  - name: b
    match: {path_exact: /b}
    verifiers: [idp]
    required_scopes: [read]
    resource: https://b.example/mcp
  - name: admin
    match: {path_exact: /admin}
    verifiers: [idp]
    required_scopes: [read, admin]
    resource: https://a.example/mcp
  - name: partner-only
    match: {path_exact: /partner}
    verifiers: [partner]
    resource: https://a.example/mcp
  - name: both
    match: {path_exact: /both}
    verifiers: [partner, idp]
    required_scopes: [read]
    resource: https://a.example/mcp
  - name: mixed
    match: {path_exact: /mixed}
    verifiers: [idp, dev]
    resource: https://a.example/mcp
`

// testNow is the verifiers' clock and the tokens' issue time.
var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// tokenCacheMaxTTL is verify's bound on one cached verification.
const tokenCacheMaxTTL = 5 * time.Minute

// testClock is the verifiers' and the cache's clock.
type testClock struct{ ns atomic.Int64 }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.set(t)
	return c
}

func (c *testClock) Now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) set(t time.Time) { c.ns.Store(t.UnixNano()) }

// countingJWT counts Verify calls: a hit never reaches Verify.
type countingJWT struct {
	*verify.JWT
	calls atomic.Int64
}

func (c *countingJWT) Verify(ctx context.Context, t *verify.Token, audiences []string) (*verify.Identity, error) {
	c.calls.Add(1)
	return c.JWT.Verify(ctx, t, audiences)
}

// lookups records the token cache's OnCache reports.
type lookups struct {
	mu      sync.Mutex
	results []string
}

func (l *lookups) add(cache, result string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.results = append(l.results, cache+":"+result)
}

func (l *lookups) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.results
	l.results = nil
	return out
}

// cacheFixture is a key directory and a configuration file built from
// cacheConfig, and the tokens minted for it.
type cacheFixture struct {
	dir, path string
	clock     *testClock
}

func newCacheFixture(t *testing.T) *cacheFixture {
	t.Helper()
	f := &cacheFixture{dir: t.TempDir(), clock: newTestClock(testNow)}
	for _, k := range []struct{ name, kid string }{{"idp", "idp-1"}, {"partner", "partner-1"}} {
		_, err := keys.Generate("ES256", k.kid, filepath.Join(f.dir, k.name))
		require.NoError(t, err)
	}
	f.path = filepath.Join(f.dir, "tokengate.yaml")
	require.NoError(t, os.WriteFile(f.path, []byte(strings.ReplaceAll(cacheConfig, "{{dir}}", f.dir)), 0o600))
	return f
}

// mint signs a token with the idp key, issued at testNow.
func (f *cacheFixture) mint(t *testing.T, scope string, aud []string, ttl time.Duration) string {
	t.Helper()
	tok, err := keys.Mint(keys.MintOptions{
		KeyFile: filepath.Join(f.dir, "idp", keys.PrivateKeyFile), Alg: "ES256", Kid: "idp-1",
		Issuer: cacheIssuer, Audience: aud, Subject: "alice", Scope: scope, TTL: ttl, Now: testNow,
		Claims: map[string]any{"email": "alice@example.com"},
	})
	require.NoError(t, err)
	return tok
}

// policy builds a Policy with the given cache size and clock skew; its JWT
// verifiers count their Verify calls, and its cache lookups are recorded.
func (f *cacheFixture) policy(t *testing.T, size int, skew time.Duration) (*Policy, map[string]*countingJWT, *lookups) {
	t.Helper()
	cfg, err := config.Load(f.path, []string{fmt.Sprintf("TOKENGATE_SERVER__TOKEN_CACHE_SIZE=%d", size)})
	require.NoError(t, err)
	cfg.Server.ClockSkew = config.Duration(skew) // 0s is not expressible in the file
	rec := &lookups{}
	p, err := Build(cfg, BuildOptions{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:    f.clock.Now,
		OnCache: func(cache, result string) {
			rec.add(cache, result)
		},
	})
	require.NoError(t, err)
	return p, countVerifies(p), rec
}

// countVerifies wraps every JWT verifier of p's routes in a countingJWT.
func countVerifies(p *Policy) map[string]*countingJWT {
	counters := map[string]*countingJWT{}
	for _, r := range p.routes {
		cands := r.chain.Candidates()
		for i, cand := range cands {
			jwt, ok := cand.Verifier.(*verify.JWT)
			if !ok {
				continue
			}
			c, ok := counters[jwt.Name()]
			if !ok {
				c = &countingJWT{JWT: jwt}
				counters[jwt.Name()] = c
			}
			cands[i].Verifier = c
		}
		r.chain = verify.NewChain(cands, p.tokens)
	}
	return counters
}

// answer is what a Check decided, comparable across policies.
type answer struct {
	Status  int
	Reason  string
	Headers map[string]string
}

func check(t *testing.T, svc *Service, path, token string) answer {
	t.Helper()
	d := svc.Decide(context.Background(), getRequest(path, token))
	a := answer{Reason: string(d.Reason), Headers: map[string]string{}}
	if d.Kind != Allow {
		a.Status = d.Status
		return a
	}
	for _, h := range d.AppendUpstream(nil) {
		a.Headers[h.Name] = h.Value
	}
	return a
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestTokenCacheSkipsVerification checks that a repeated token is answered
// without calling its verifier, with the same answer, identity headers
// included, and that size 0 turns the cache off.
func TestTokenCacheSkipsVerification(t *testing.T) {
	f := newCacheFixture(t)
	token := f.mint(t, "read", []string{"https://a.example/mcp"}, time.Hour)
	tests := []struct {
		name      string
		size      int
		wantCalls int64
		wantLooks []string
	}{
		{"on", config.DefaultTokenCacheSize, 1, []string{"token:miss", "token:hit", "token:hit"}},
		{"off", 0, 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, calls, looks := f.policy(t, tt.size, time.Minute)
			svc := NewService(p, discard(), nil)
			first := check(t, svc, "/a", token)
			require.Equal(t, 0, first.Status, "allowed")
			assert.Equal(t, map[string]string{
				HeaderSub: "alice", HeaderIss: cacheIssuer, HeaderScopes: "read", HeaderVerifier: "idp",
				"x-email": "alice@example.com",
			}, first.Headers)
			for range 2 {
				assert.Equal(t, first, check(t, svc, "/a", token), "a cached answer is the same answer")
			}
			assert.Equal(t, tt.wantCalls, calls["idp"].calls.Load(), "Verify calls")
			assert.Equal(t, tt.wantLooks, looks.take())
		})
	}
}

// TestTokenCacheRouteChecks caches a token through route a, then presents
// it to other routes: each route's verifiers, audience and scopes still
// decide, and the answer is always the one an uncached policy gives.
func TestTokenCacheRouteChecks(t *testing.T) {
	f := newCacheFixture(t)
	// Also meant for partner, whose key did not sign it.
	token := f.mint(t, "read", []string{"https://a.example/mcp", "api://partner"}, time.Hour)
	tests := []struct {
		name, path  string
		wantStatus  int
		wantReason  string
		wantIdp     int64 // idp Verify calls after the warm-up
		wantPartner int64
		wantLooks   []string
	}{
		{"same route", "/a", 0, "ok", 0, 0, []string{"token:hit"}},
		{"other resource", "/b", 401, "audience_mismatch", 0, 0, []string{"token:hit"}},
		{"missing scope", "/admin", 403, "scope_insufficient", 0, 0, []string{"token:hit"}},
		// partner has the same issuer but another key: the cached idp
		// verification does not count on a route without idp.
		{"verifier not on route", "/partner", 401, "signature_invalid", 0, 1, []string{"token:hit"}},
		// partner is tried first (and refuses), then idp answers from cache.
		{"verifier order", "/both", 0, "ok", 0, 1, []string{"token:hit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, calls, looks := f.policy(t, 100, time.Minute)
			svc := NewService(p, discard(), nil)
			require.Equal(t, 0, check(t, svc, "/a", token).Status, "warm-up through route a")
			require.Equal(t, int64(1), calls["idp"].calls.Load())
			looks.take()

			got := check(t, svc, tt.path, token)
			assert.Equal(t, tt.wantStatus, got.Status)
			assert.Equal(t, tt.wantReason, got.Reason)
			assert.Equal(t, tt.wantIdp, calls["idp"].calls.Load()-1, "idp Verify calls")
			assert.Equal(t, tt.wantPartner, calls["partner"].calls.Load(), "partner Verify calls")
			assert.Equal(t, tt.wantLooks, looks.take())

			uncached, _, _ := f.policy(t, 0, time.Minute)
			assert.Equal(t, check(t, NewService(uncached, discard(), nil), tt.path, token), got, "same answer as without the cache")
		})
	}
}

// TestTokenCacheOnlyJWTs checks that static tokens (even JWS-shaped ones)
// and failed verifications are never cached.
func TestTokenCacheOnlyJWTs(t *testing.T) {
	f := newCacheFixture(t)
	wrongAud := f.mint(t, "read", []string{"https://elsewhere.example"}, time.Hour)
	tests := []struct {
		name, path, token string
		wantStatus        int
	}{
		{"static token", "/mixed", "dev.static.token", 0},
		{"refused JWT", "/a", wrongAud, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, looks := f.policy(t, 100, time.Minute)
			svc := NewService(p, discard(), nil)
			for range 2 {
				assert.Equal(t, tt.wantStatus, check(t, svc, tt.path, tt.token).Status)
			}
			assert.Equal(t, 0, p.tokens.Len())
			assert.Equal(t, []string{"token:miss", "token:miss"}, looks.take())
		})
	}
}

// TestTokenCacheExpiry moves the clock: an entry answers until the token's
// exp and never past it, at most tokenCacheMaxTTL after the verification;
// past the entry's end the token is verified again, which decides.
func TestTokenCacheExpiry(t *testing.T) {
	f := newCacheFixture(t)
	short := f.mint(t, "read", []string{"https://a.example/mcp"}, 2*time.Minute)
	long := f.mint(t, "read", []string{"https://a.example/mcp"}, time.Hour)
	exp := testNow.Add(2 * time.Minute)
	tests := []struct {
		name       string
		token      string
		skew       time.Duration
		at         time.Time
		wantStatus int
		wantReason string
		wantCalls  int64 // Verify calls after the warm-up
		wantLooks  []string
	}{
		{"just before exp", short, 0, exp.Add(-time.Nanosecond), 0, "ok", 0, []string{"token:hit"}},
		{"at exp", short, 0, exp, 401, "token_expired", 1, []string{"token:miss"}},
		// Within the clock skew Verify still accepts, but the cache does
		// not keep the token past exp.
		{"at exp with skew", short, time.Minute, exp, 0, "ok", 1, []string{"token:miss"}},
		{"past exp and skew", short, time.Minute, exp.Add(time.Minute), 401, "token_expired", 1, []string{"token:miss"}},
		{"before max TTL", long, 0, testNow.Add(tokenCacheMaxTTL - time.Nanosecond), 0, "ok", 0, []string{"token:hit"}},
		{"at max TTL", long, 0, testNow.Add(tokenCacheMaxTTL), 0, "ok", 1, []string{"token:miss"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.clock.set(testNow)
			p, calls, looks := f.policy(t, 100, tt.skew)
			svc := NewService(p, discard(), nil)
			require.Equal(t, 0, check(t, svc, "/a", tt.token).Status, "warm-up")
			looks.take()

			f.clock.set(tt.at)
			got := check(t, svc, "/a", tt.token)
			assert.Equal(t, tt.wantStatus, got.Status)
			assert.Equal(t, tt.wantReason, got.Reason)
			assert.Equal(t, tt.wantCalls, calls["idp"].calls.Load()-1, "Verify calls")
			assert.Equal(t, tt.wantLooks, looks.take())
		})
	}

	t.Run("re-verified token is cached again", func(t *testing.T) {
		f.clock.set(testNow)
		p, calls, looks := f.policy(t, 100, 0)
		svc := NewService(p, discard(), nil)
		for _, at := range []time.Time{testNow, testNow.Add(tokenCacheMaxTTL), testNow.Add(tokenCacheMaxTTL + time.Second)} {
			f.clock.set(at)
			require.Equal(t, 0, check(t, svc, "/a", long).Status)
		}
		assert.Equal(t, int64(2), calls["idp"].calls.Load())
		assert.Equal(t, []string{"token:miss", "token:miss", "token:hit"}, looks.take())
	})
}

// TestTokenCacheKeyRotation checks that a cached token stops passing when
// the key that signed it leaves the JWKS, as an uncached one would.
func TestTokenCacheKeyRotation(t *testing.T) {
	dir := t.TempDir()
	var jwks [2][]byte
	for i := range jwks {
		_, err := keys.Generate("ES256", fmt.Sprintf("k%d", i+1), filepath.Join(dir, fmt.Sprint(i+1)))
		require.NoError(t, err)
		jwks[i], err = os.ReadFile(filepath.Join(dir, fmt.Sprint(i+1), keys.JWKSFile))
		require.NoError(t, err)
	}
	var serving atomic.Int32 // index into jwks
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(jwks[serving.Load()])
	}))
	t.Cleanup(idp.Close)
	path := filepath.Join(dir, "tokengate.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
verifiers:
  idp: {type: jwt, issuer: "`+cacheIssuer+`", jwks_uri: "`+idp.URL+`/jwks", jwks_refresh: 1h}
routes:
  - name: a
    match: {path_exact: /a}
    verifiers: [idp]
    resource: https://a.example/mcp
`), 0o600))
	cfg, err := config.Load(path, nil)
	require.NoError(t, err)
	p, err := Build(cfg, BuildOptions{Logger: discard(), Now: func() time.Time { return testNow }})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p.Start(ctx)
	require.Eventually(t, func() bool { return len(p.NotReady()) == 0 }, 10*time.Second, 10*time.Millisecond)
	calls := countVerifies(p)
	svc := NewService(p, discard(), nil)

	mint := func(i int) string {
		tok, err := keys.Mint(keys.MintOptions{
			KeyFile: filepath.Join(dir, fmt.Sprint(i), keys.PrivateKeyFile), Alg: "ES256", Kid: fmt.Sprintf("k%d", i),
			Issuer: cacheIssuer, Audience: []string{"https://a.example/mcp"}, Subject: "alice", Now: testNow,
		})
		require.NoError(t, err)
		return tok
	}
	old, fresh := mint(1), mint(2)
	steps := []struct {
		name       string
		token      string
		rotate     bool
		wantStatus int
		wantReason string
		wantCalls  int64 // total Verify calls so far
	}{
		{"first sight", old, false, 0, "ok", 1},
		{"cached", old, false, 0, "ok", 1},
		{"new key's token refetches the JWKS", fresh, true, 0, "ok", 2},
		{"old key gone: the entry is stale", old, false, 401, "key_unknown", 3},
	}
	for _, s := range steps {
		if s.rotate {
			serving.Store(1)
		}
		got := check(t, svc, "/a", s.token)
		assert.Equal(t, s.wantStatus, got.Status, s.name)
		assert.Equal(t, s.wantReason, got.Reason, s.name)
		assert.Equal(t, s.wantCalls, calls["idp"].calls.Load(), s.name)
	}
}

// TestTokenCacheReloadStartsEmpty checks that a new Policy (a reload) has
// its own, empty cache.
func TestTokenCacheReloadStartsEmpty(t *testing.T) {
	f := newCacheFixture(t)
	token := f.mint(t, "read", []string{"https://a.example/mcp"}, time.Hour)
	old, oldCalls, _ := f.policy(t, 100, time.Minute)
	svc := NewService(old, discard(), nil)
	for range 2 {
		require.Equal(t, 0, check(t, svc, "/a", token).Status)
	}
	require.Equal(t, int64(1), oldCalls["idp"].calls.Load())
	require.Equal(t, 1, old.tokens.Len())

	reloaded, calls, looks := f.policy(t, 100, time.Minute)
	assert.Equal(t, 0, reloaded.tokens.Len())
	svc.SetPolicy(reloaded)
	require.Equal(t, 0, check(t, svc, "/a", token).Status)
	assert.Equal(t, int64(1), calls["idp"].calls.Load(), "the new policy verifies again")
	assert.Equal(t, []string{"token:miss"}, looks.take())
}

// TestTokenCacheConcurrent runs Checks from 8 goroutines over more tokens
// than a small cache holds, on routes with different audiences and scopes
// (run with -race): every answer is the uncached policy's answer.
func TestTokenCacheConcurrent(t *testing.T) {
	f := newCacheFixture(t)
	var tokens []string
	for i := range 24 {
		scope := "read"
		if i%3 == 0 {
			scope = "read admin"
		}
		tokens = append(tokens, f.mint(t, scope, []string{"https://a.example/mcp"}, time.Hour))
	}
	paths := []string{"/a", "/b", "/admin", "/both", "/partner"}
	uncached, _, _ := f.policy(t, 0, time.Minute)
	plain := NewService(uncached, discard(), nil)
	want := map[string]int{}
	for _, tok := range tokens {
		for _, path := range paths {
			want[path+" "+tok] = statusOf(t, plain, path, tok)
		}
	}

	p, _, looks := f.policy(t, 8, time.Minute)
	svc := NewService(p, discard(), nil)
	const workers, rounds = 8, 300
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				// Each worker shows a token to every route in turn.
				tok, path := tokens[(w*7+i/len(paths))%len(tokens)], paths[i%len(paths)]
				if got := statusOf(t, svc, path, tok); got != want[path+" "+tok] {
					t.Errorf("%s: status %d, want %d", path, got, want[path+" "+tok])
				}
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, p.tokens.Len(), 8)
	assert.Len(t, looks.take(), workers*rounds, "one lookup per Check")
}

func statusOf(t *testing.T, svc *Service, path, token string) int {
	d := svc.Decide(context.Background(), getRequest(path, token))
	if d.Kind == Allow {
		return 0
	}
	return d.Status
}

// getRequest is a GET of path on mcp.example.com with the bearer token.
func getRequest(path, token string) *Request {
	return &Request{Method: "GET", Host: "mcp.example.com", Path: path,
		Headers: Headers{Map: map[string]string{"authorization": "Bearer " + token}}}
}
