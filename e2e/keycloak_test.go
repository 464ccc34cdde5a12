package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/internal/envoycfg"
	"github.com/tokengate/tokengate/internal/keycloak"
	"github.com/tokengate/tokengate/keys"
)

// The one Keycloak of this test binary: started by the first test that
// needs it, stopped by TestMain.
var kc struct {
	once sync.Once
	srv  *keycloak.Server
	dir  string
	err  error
}

// sharedKeycloak returns the running Keycloak, starting it on first use.
// Outside CI a missing distribution skips the test; under CI=true it fails.
func sharedKeycloak(t *testing.T) *keycloak.Server {
	t.Helper()
	kc.once.Do(func() {
		kc.dir, kc.err = os.MkdirTemp("", "tokengate-e2e-keycloak")
		if kc.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		kc.srv, kc.err = keycloak.Start(ctx, keycloak.Options{Dir: kc.dir})
		if kc.err == nil {
			fmt.Fprintf(os.Stderr, "e2e: Keycloak started in %s (database from a template: %t; %s)\n",
				kc.srv.Started.Round(100*time.Millisecond), kc.srv.FromTemplate, kc.srv.URL())
		}
	})
	if errors.Is(kc.err, keycloak.ErrNotInstalled) && os.Getenv("CI") != "true" {
		t.Skipf("%v: run `make keycloak` to fetch it", kc.err)
	}
	require.NoError(t, kc.err, "Keycloak (CI=true: a missing Keycloak is a failure)")
	// A test that stopped it and failed before starting it again must not
	// take the others down with it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	require.NoError(t, kc.srv.Resume(ctx))
	return kc.srv
}

// stopKeycloak ends the shared Keycloak, if one was started.
func stopKeycloak() {
	if kc.srv != nil {
		kc.srv.Stop()
	}
	if kc.dir != "" {
		os.RemoveAll(kc.dir)
	}
}

// kcEnv is a stack whose tokengate trusts the shared Keycloak:
//   - /mcp: the JWT verifier "kc" (issuer only: keys through OIDC discovery),
//     required scope mcp:read;
//   - /kcwrite: the same verifier, required scopes mcp:read and mcp:write;
//   - /kcintro: introspection at Keycloak with a 1s cache;
//   - /kccached: introspection at Keycloak with a 10m cache;
//   - /kcops: the "kc" verifier with the MCP operation rules of contract
//     section 9 (opsRoute: admin_* tools need mcp:admin, echo mcp:read,
//     other tools mcp:write) and its scope hierarchy.
type kcEnv struct {
	*env
	kc *keycloak.Server
}

func startKeycloakEnv(t *testing.T) *kcEnv {
	t.Helper()
	srv := sharedKeycloak(t)
	intro := func(name, ttl string) string {
		return `
  ` + name + `:
    type: introspection
    introspection_url: ` + srv.Endpoint("token/introspect") + `
    client_id: ` + keycloak.IntrospectionClient + `
    client_secret: ` + keycloak.IntrospectionSecret + `
    issuer: ` + srv.Issuer() + `
    audiences: [` + keycloak.Audience + `]
    timeout: 2s
    cache_ttl: ` + ttl + `
`
	}
	e := startEnv(t, envOptions{
		verifiers: func(*env) string {
			return `
  kc:
    type: jwt
    issuer: ` + srv.Issuer() + `
    audiences: [` + keycloak.Audience + `]
    jwks_min_refetch_interval: 100ms
` + intro("kcintro", "1s") + intro("kccached", "10m")
		},
		routeVerifiers:   []string{"kc"},
		topLevel:         opsTopLevel,
		envoyRequestBody: true,
		routes: func(*env) string {
			return `
  - name: kcops
    match: {path_prefix: /kcops}
    verifiers: [kc]
    required_scopes: [mcp:read]
` + opsRoute + `
  - name: kcwrite
    match: {path_prefix: /kcwrite}
    verifiers: [kc]
    required_scopes: [mcp:read, mcp:write]
  - name: kcintro
    match: {path_prefix: /kcintro}
    verifiers: [kcintro]
    required_scopes: [mcp:read]
  - name: kccached
    match: {path_prefix: /kccached}
    verifiers: [kccached]
    required_scopes: [mcp:read]
` + exchangeRoute("kcx", srv, keycloak.BackendClient) + exchangeRoute("kcnox", srv, keycloak.DPoPClient)
		},
		envoyRoutes: []envoycfg.Route{
			{Prefix: "/kcwrite", PrefixRewrite: "/mcp"},
			{Prefix: "/kcops", PrefixRewrite: "/mcp"},
			{Prefix: "/kcintro", PrefixRewrite: "/mcp"},
			{Prefix: "/kccached", PrefixRewrite: "/mcp"},
			{Prefix: "/kcnox", PrefixRewrite: "/mcp"},
			{Prefix: "/kcx", PrefixRewrite: "/mcp"},
		},
	})
	return &kcEnv{env: e, kc: srv}
}

// token is a client-credentials token of the agent client with scopes.
func (e *kcEnv) token(t *testing.T, scopes ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := e.kc.AgentToken(ctx, scopes...)
	require.NoError(t, err)
	return tok
}

// tokenKid reads the (unverified) kid of a JWS compact token.
func tokenKid(tok string) string {
	head, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(b, &h)
	return h.Kid
}

func TestKeycloakClientCredentialsThroughDiscovery(t *testing.T) {
	e := startKeycloakEnv(t)
	tok := e.token(t)
	who := e.whoamiWith(t, tok)
	assert.Equal(t, "kc", who["x-auth-verifier"])
	assert.Equal(t, e.kc.Issuer(), who["x-auth-iss"])
	assert.NotEmpty(t, who["x-auth-sub"])

	t.Run("the same token through introspection", func(t *testing.T) {
		who := e.whoamiAt(t, "/kcintro", bearer(tok))
		assert.Equal(t, "kcintro", who["x-auth-verifier"])
		assert.Equal(t, e.kc.Issuer(), who["x-auth-iss"])
	})
	t.Run("a token of another Keycloak client without the audience is 401", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		other, err := e.kc.Token(ctx, keycloak.ExchangeClient, keycloak.ExchangeSecret, "mcp:read")
		require.NoError(t, err)
		resp, body := e.post(t, "/mcp", bearer(other))
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.JSONEq(t, `{"error":"invalid_token","error_description":"audience_mismatch"}`, body)
	})
}

// TestKeycloakInsufficientScope: a Keycloak token without a scope the
// route requires is a 403 insufficient_scope. Per-tool step-up rules
// (contract section 9) add their cases to this table.
func TestKeycloakInsufficientScope(t *testing.T) {
	e := startKeycloakEnv(t)
	tests := []struct {
		name   string
		path   string
		scopes []string
		// wantScope is the scope parameter of the 403; "" means allowed.
		wantScope string
	}{
		{name: "route scope mcp:write missing", path: "/kcwrite", wantScope: "mcp:read mcp:write"},
		{name: "route scope mcp:write granted", path: "/kcwrite", scopes: []string{"mcp:write"}},
		{name: "mcp:admin implies mcp:write (scope_hierarchy)", path: "/kcwrite", scopes: []string{"mcp:admin"}},
		{name: "read route with the default scope", path: "/mcp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := e.token(t, tc.scopes...)
			resp, body := e.post(t, tc.path, bearer(tok))
			if tc.wantScope == "" {
				assert.Equal(t, http.StatusOK, resp.StatusCode, body)
				return
			}
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
			assert.Equal(t, `Bearer error="insufficient_scope", error_description="scope_insufficient", scope="`+tc.wantScope+`"`,
				resp.Header.Get("WWW-Authenticate"))
			assert.JSONEq(t, `{"error":"insufficient_scope","error_description":"scope_insufficient"}`, body)
		})
	}

	// Per-tool step-up (contract section 9), one session of a client that
	// speaks 2025-11-25 (tokengate reads the body Envoy forwards).
	url := e.stack.EnvoyURL() + "/kcops"
	read := e.token(t)
	init := rpcPost(t, url, bearer(read),
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"kc","version":"1"}}}`)
	require.Equal(t, http.StatusOK, init.status, init.raw)
	session := &legacySession{url: url, id: init.header.Get("Mcp-Session-Id"), nextID: 2}
	require.NotEmpty(t, session.id)
	note := rpcPost(t, url, session.headers(read), `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	require.Equal(t, http.StatusAccepted, note.status, note.raw)
	admin := e.token(t, "mcp:admin")
	tools := []struct {
		name, tool string
		tok        string
		// wantScope is the step-up challenge's scope; "" means allowed.
		wantScope string
	}{
		{name: "tool needing only the route scope", tool: "echo", tok: read},
		{name: "write tool without mcp:write", tool: "whoami", tok: read, wantScope: "mcp:read mcp:write"},
		{name: "admin tool without mcp:admin", tool: "admin_reset", tok: read, wantScope: "mcp:read mcp:admin"},
		{name: "write tool with mcp:admin (hierarchy)", tool: "whoami", tok: admin},
		{name: "admin tool with mcp:admin", tool: "admin_reset", tok: admin},
	}
	for _, tc := range tools {
		t.Run("per-tool step-up/"+tc.name, func(t *testing.T) {
			var args map[string]any
			if tc.tool == "echo" {
				args = map[string]any{"text": "hi"}
			}
			a := session.call(t, tc.tok, tc.tool, args)
			if tc.wantScope == "" {
				require.Equal(t, http.StatusOK, a.status, a.raw)
				assert.NotEmpty(t, toolText(t, a))
				result, _ := a.msg["result"].(map[string]any)
				assert.NotEqual(t, true, result["isError"], a.raw)
				return
			}
			assert.Equal(t, http.StatusForbidden, a.status, a.raw)
			params := challenge(t, a.header.Values("WWW-Authenticate"))
			assert.Equal(t, "insufficient_scope", params["error"])
			assert.Equal(t, tc.wantScope, params["scope"])
		})
	}
}

// TestKeycloakKeyRotationWithoutFailures rotates Keycloak's signing key the
// way an operator does (a new active key of higher priority, then the old
// one passive, then disabled) while clients keep fetching tokens and
// sending requests: not one request may fail.
func TestKeycloakKeyRotationWithoutFailures(t *testing.T) {
	e := startKeycloakEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	old, err := e.kc.SigningKey(ctx)
	require.NoError(t, err)

	var (
		current  atomic.Pointer[string]
		mu       sync.Mutex
		okByKid  = map[string]int{}
		failures []string
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	first := e.token(t)
	current.Store(&first)
	// The client: a fresh token as often as Keycloak hands one out.
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			tok, err := e.kc.AgentToken(ctx)
			if err != nil {
				mu.Lock()
				failures = append(failures, "token endpoint: "+err.Error())
				mu.Unlock()
				return
			}
			current.Store(&tok)
		}
	})
	// Two request streams with the latest token.
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				tok := *current.Load()
				resp, body, err := initialize(http.DefaultClient, e.stack.EnvoyURL()+"/mcp", bearer(tok))
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case resp.StatusCode != http.StatusOK:
					failures = append(failures, fmt.Sprintf("kid %s: HTTP %d %s", tokenKid(tok), resp.StatusCode, body))
				default:
					okByKid[tokenKid(tok)]++
				}
				mu.Unlock()
			}
		})
	}
	// accepted waits until n more requests with kid were accepted.
	accepted := func(what, kid string, n int) {
		t.Helper()
		mu.Lock()
		target := okByKid[kid] + n
		mu.Unlock()
		eventually(t, what, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return okByKid[kid] >= target || len(failures) > 0
		})
	}
	accepted("requests with the old key", old.Kid, 20)

	nextID, err := e.kc.AddRSAKey(ctx, "rsa-next", old.Priority+100)
	require.NoError(t, err)
	next, err := e.kc.SigningKey(ctx)
	require.NoError(t, err)
	require.Equal(t, nextID, next.ProviderID)
	require.NotEqual(t, old.Kid, next.Kid)
	accepted("requests with the new key", next.Kid, 20)

	require.NoError(t, e.kc.SetKeyActive(ctx, old.ProviderID, false))
	accepted("requests after the old key went passive", next.Kid, 20)
	published, err := e.kc.PublishedKids(ctx)
	require.NoError(t, err)
	assert.Contains(t, published, old.Kid, "a passive key still verifies")

	require.NoError(t, e.kc.SetKeyEnabled(ctx, old.ProviderID, false))
	accepted("requests after the old key was disabled", next.Kid, 20)
	published, err = e.kc.PublishedKids(ctx)
	require.NoError(t, err)
	assert.NotContains(t, published, old.Kid, "the disabled key left the JWKS")
	assert.Contains(t, published, next.Kid)

	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, failures, "failed requests during the rotation")
	assert.GreaterOrEqual(t, okByKid[old.Kid], 20)
	assert.GreaterOrEqual(t, okByKid[next.Kid], 60)
	t.Logf("accepted during the rotation: %d with the old key, %d with the new one; 0 failed", okByKid[old.Kid], okByKid[next.Kid])
}

// TestKeycloakIntrospectionRevocation: a Keycloak token introspected as
// active, then revoked at Keycloak's revocation endpoint, is refused once
// tokengate's 1s cache entry ends.
func TestKeycloakIntrospectionRevocation(t *testing.T) {
	e := startKeycloakEnv(t)
	tok := e.token(t)
	resp, body := e.post(t, "/kcintro", bearer(tok))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, e.kc.Revoke(ctx, keycloak.AgentClient, keycloak.AgentSecret, tok))

	var last *http.Response
	eventually(t, "the revoked token is refused", func() bool {
		last, body = e.post(t, "/kcintro", bearer(tok))
		return last.StatusCode != http.StatusOK
	})
	assert.Equal(t, http.StatusUnauthorized, last.StatusCode)
	assert.JSONEq(t, `{"error":"invalid_token","error_description":"token_inactive"}`, body)
	assert.Equal(t, `Bearer error="invalid_token", error_description="token_inactive", scope="mcp:read"`, last.Header.Get("WWW-Authenticate"))

	// Still refused (never cached as inactive-then-active), and a fresh
	// token of the same client is not affected.
	resp, _ = e.post(t, "/kcintro", bearer(tok))
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, body = e.post(t, "/kcintro", bearer(e.token(t)))
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
}

// exchangeRoute is a route whose upstream receives a token that tokengate
// obtained from Keycloak by RFC 8693 token exchange for audience.
func exchangeRoute(name string, srv *keycloak.Server, audience string) string {
	return `  - name: ` + name + `
    match: {path_prefix: /` + name + `}
    verifiers: [kc]
    required_scopes: [mcp:read]
    upstream_token:
      mode: exchange
      audience: ` + audience + `
      token_endpoint: ` + srv.Endpoint("token") + `
      client_id: ` + keycloak.ExchangeClient + `
      client_secret: ` + keycloak.ExchangeSecret + `
`
}

// TestKeycloakTokenExchange (contract section 12, exchange mode): the
// upstream receives a Keycloak token for the backend audience with the
// caller's subject, never the caller's own token; an audience Keycloak does
// not permit is answered 403 token_exchange_refused.
func TestKeycloakTokenExchange(t *testing.T) {
	e := startKeycloakEnv(t)
	caller := e.token(t)
	who := e.whoamiAt(t, "/kcx", bearer(caller))
	claims, ok := who["authorization_claims"].(map[string]any)
	require.True(t, ok, "whoami shows the exchanged token: %v", who)
	assert.Contains(t, fmt.Sprint(claims["aud"]), keycloak.BackendClient, "the exchanged token's audience")
	assert.Equal(t, jwtPayload(t, caller)["sub"], claims["sub"], "the caller's subject")
	assert.Equal(t, e.kc.Issuer(), claims["iss"])

	resp, body := e.post(t, "/kcnox", bearer(caller))
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	assert.Contains(t, body, "token_exchange_refused")
}

// TestKeycloakDPoPBoundToken (contract section 11): Keycloak binds a
// client-credentials token to the client's key when the token request
// carries a DPoP proof (dpop.bound.access.tokens); through Envoy it is
// accepted with fresh proofs, and refused replayed, for another URL, or as
// Bearer.
func TestKeycloakDPoPBoundToken(t *testing.T) {
	e := startKeycloakEnv(t)
	dir := e.newKey(t, "kc-dpop", "ES256")
	key, err := keys.LoadPrivateKey(filepath.Join(dir, keys.PrivateKeyFile))
	require.NoError(t, err)
	tokenURL := e.kc.Endpoint("token")
	proof, err := keys.MintDPoPProof(key, "ES256", "POST", tokenURL, "", "", time.Time{}, "")
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader("grant_type=client_credentials"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", proof)
	req.SetBasicAuth("mcp-dpop-agent", "mcp-dpop-agent-secret")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tr))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, strings.EqualFold(tr.TokenType, "DPoP"), "token_type %q", tr.TokenType)
	jkt, err := keys.KeyThumbprintFile(filepath.Join(dir, keys.PrivateKeyFile))
	require.NoError(t, err)
	cnf, _ := jwtPayload(t, tr.AccessToken)["cnf"].(map[string]any)
	require.Equal(t, jkt, cnf["jkt"], "Keycloak bound the token to the proof's key")

	url := e.stack.EnvoyURL() + "/mcp"
	fresh := func(u string) string {
		p, err := keys.MintDPoPProof(key, "ES256", "POST", u, tr.AccessToken, "", time.Time{}, "")
		require.NoError(t, err)
		return p
	}
	do := func(auth, proof string) int {
		h := map[string]string{"Authorization": auth}
		if proof != "" {
			h["DPoP"] = proof
		}
		resp, _, err := initialize(http.DefaultClient, url, h)
		require.NoError(t, err)
		return resp.StatusCode
	}
	first := fresh(url)
	assert.Equal(t, http.StatusOK, do("DPoP "+tr.AccessToken, first), "a fresh proof")
	assert.Equal(t, http.StatusOK, do("DPoP "+tr.AccessToken, fresh(url)), "another fresh proof")
	assert.Equal(t, http.StatusUnauthorized, do("DPoP "+tr.AccessToken, first), "the proof replayed")
	assert.Equal(t, http.StatusUnauthorized, do("DPoP "+tr.AccessToken, fresh(e.stack.EnvoyURL()+"/elsewhere")), "a proof for another URL")
	assert.Equal(t, http.StatusUnauthorized, do("Bearer "+tr.AccessToken, ""), "the token as Bearer")
}

// TestKeycloakOutageAndRecovery stops Keycloak: tokens tokengate has
// cached, and JWTs signed with keys it knows, keep passing; a token it
// would have to introspect gets 503 with Retry-After. Started again,
// Keycloak is used again without restarting tokengate.
func TestKeycloakOutageAndRecovery(t *testing.T) {
	e := startKeycloakEnv(t)
	jwt := e.token(t)
	cached := e.token(t)
	uncached := e.token(t)
	resp, body := e.post(t, "/mcp", bearer(jwt))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	resp, body = e.post(t, "/kccached", bearer(cached))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)

	e.kc.Stop()
	// This is the last Keycloak test in file order: Keycloak stays stopped
	// for the rest of the suite (its JVM would compete with the load tests);
	// a later Keycloak test would start it again (sharedKeycloak resumes).
	t.Cleanup(e.kc.Stop)

	t.Run("a JWT with a known key passes", func(t *testing.T) {
		resp, body := e.post(t, "/mcp", bearer(jwt))
		assert.Equal(t, http.StatusOK, resp.StatusCode, body)
		resp, body = e.post(t, "/mcp", bearer(uncached)) // never seen, same key
		assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	})
	t.Run("a cached introspection result passes", func(t *testing.T) {
		resp, body := e.post(t, "/kccached", bearer(cached))
		assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	})
	t.Run("an uncached introspection is 503 with Retry-After", func(t *testing.T) {
		resp, body := e.post(t, "/kccached", bearer(uncached))
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assert.Equal(t, "5", resp.Header.Get("Retry-After"))
		assert.Empty(t, resp.Header.Get("WWW-Authenticate"))
		assert.JSONEq(t, `{"error":"temporarily_unavailable","error_description":"introspection_unavailable"}`, body)
	})

	t.Run("a token exchange with the provider down is 503", func(t *testing.T) {
		resp, body := e.post(t, "/kcx", bearer(uncached))
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assert.Equal(t, "5", resp.Header.Get("Retry-After"))
		assert.JSONEq(t, `{"error":"temporarily_unavailable","error_description":"token_exchange_unavailable"}`, body)
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	require.NoError(t, e.kc.Resume(ctx))

	t.Run("recovery without a tokengate restart", func(t *testing.T) {
		eventually(t, "the uncached token is introspected again", func() bool {
			resp, _ := e.post(t, "/kccached", bearer(uncached))
			return resp.StatusCode == http.StatusOK
		})
		who := e.whoamiAt(t, "/kccached", bearer(uncached))
		assert.Equal(t, "kccached", who["x-auth-verifier"])
		who = e.whoamiWith(t, e.token(t))
		assert.Equal(t, "kc", who["x-auth-verifier"])
	})
}
