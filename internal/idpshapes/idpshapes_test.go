package idpshapes

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/authz"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/keys"
	"github.com/tokengate/tokengate/verify"
)

const kid = "idp-test-key"

// docBlocks returns the verifier blocks of docs/identity-providers.md,
// by the name of their "<!-- idp-test: NAME -->" marker.
func docBlocks(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "identity-providers.md"))
	require.NoError(t, err)
	re := regexp.MustCompile("(?s)<!-- idp-test: ([a-z0-9-]+) -->\n```yaml\n(.*?)```")
	blocks := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		require.NotContains(t, blocks, m[1], "duplicate marker")
		blocks[m[1]] = m[2]
	}
	return blocks
}

// idp answers tokengate's discovery and JWKS requests for any host, as
// the provider would: a discovery document only at the URLs derived from
// one of the configured issuers, naming that issuer exactly.
type idp struct {
	issuers []string
	jwks    []byte

	mu   sync.Mutex
	urls []string
}

func (p *idp) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Hostname() == "127.0.0.1" {
		return http.DefaultTransport.RoundTrip(r) // a test's own httptest server
	}
	p.mu.Lock()
	p.urls = append(p.urls, r.URL.String())
	p.mu.Unlock()
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "application/json")
	for _, iss := range p.issuers {
		if urls, err := verify.DiscoveryURLs(iss); err == nil && slices.Contains(urls, r.URL.String()) {
			_ = json.NewEncoder(rec).Encode(map[string]string{"issuer": iss, "jwks_uri": "https://" + r.URL.Host + "/test-jwks"})
			return rec.Result(), nil
		}
	}
	if r.URL.Path == "/test-jwks" || strings.HasSuffix(r.URL.Path, "/discovery/v2.0/keys") {
		_, _ = rec.Write(p.jwks)
		return rec.Result(), nil
	}
	rec.WriteHeader(http.StatusNotFound)
	return rec.Result(), nil
}

// signer mints tokens with one RS256 key made by the keys package.
type signer struct {
	keyFile string
	jwks    []byte
}

func newSigner(t *testing.T) *signer {
	t.Helper()
	dir := t.TempDir()
	_, err := keys.Generate("RS256", kid, dir)
	require.NoError(t, err)
	jwks, err := os.ReadFile(filepath.Join(dir, keys.JWKSFile))
	require.NoError(t, err)
	return &signer{keyFile: filepath.Join(dir, keys.PrivateKeyFile), jwks: jwks}
}

// mint signs claims (iat and exp are added: now and in an hour). With an
// "aud" it goes through keys.Mint; a token without one (Cognito's access
// tokens) is signed with the same key through jws.
func (s *signer) mint(t *testing.T, claims map[string]any) string {
	t.Helper()
	c := map[string]any{}
	for k, v := range claims {
		c[k] = v
	}
	aud, hasAud := c["aud"]
	if !hasAud {
		now := time.Now()
		c["iat"], c["exp"] = now.Unix(), now.Add(time.Hour).Unix()
		payload, err := json.Marshal(c)
		require.NoError(t, err)
		key, err := keys.LoadPrivateKey(s.keyFile)
		require.NoError(t, err)
		hdr := jws.NewHeaders()
		require.NoError(t, hdr.Set(jws.KeyIDKey, kid))
		require.NoError(t, hdr.Set(jws.TypeKey, "JWT"))
		tok, err := jws.Sign(payload, jws.WithKey(jwa.RS256(), key, jws.WithProtectedHeaders(hdr)))
		require.NoError(t, err)
		return string(tok)
	}
	o := keys.MintOptions{KeyFile: s.keyFile, Alg: "RS256", Kid: kid, TTL: time.Hour, Claims: map[string]any{}}
	switch a := aud.(type) {
	case string:
		o.Audience = []string{a}
	case []string:
		o.Audience = a
	default:
		t.Fatalf("aud %T", aud)
	}
	o.Issuer, _ = c["iss"].(string)
	o.Subject, _ = c["sub"].(string)
	for k, v := range c {
		if k != "iss" && k != "sub" && k != "aud" {
			o.Claims[k] = v
		}
	}
	tok, err := keys.Mint(o)
	require.NoError(t, err)
	return tok
}

// policy loads cfg (a verifier block and routes) and builds the policy
// with p answering every identity-provider request.
func policy(t *testing.T, cfg string, p *idp) *authz.Service {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokengate.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	c, err := config.Load(path, nil)
	require.NoError(t, err, cfg)
	pol, err := authz.Build(c, authz.BuildOptions{HTTPClient: &http.Client{Transport: p}})
	require.NoError(t, err)
	return authz.NewService(pol, nil, nil)
}

// decision is what tokengate answers for one request.
type decision struct {
	status int
	// verifier, iss and scopes of an allow.
	verifier, iss, scopes string
	body                  string
}

func check(t *testing.T, svc *authz.Service, path, tok string) decision {
	t.Helper()
	d := svc.Decide(context.Background(), &authz.Request{
		Method: "POST", Host: "mcp.example.com", Path: path, Scheme: "https",
		Headers: authz.Headers{Map: map[string]string{"authorization": "Bearer " + tok}},
	})
	if d.Kind == authz.Allow {
		id := d.Identity
		return decision{status: http.StatusOK, verifier: id.Verifier(), iss: id.Issuer(), scopes: id.Scopes()}
	}
	return decision{status: d.Status, body: string(d.ResponseBody())}
}

// tokenCase is one token of a provider's shape and tokengate's answer.
type tokenCase struct {
	name   string
	claims map[string]any
	// status 200 means allowed with verifier and scopes (x-auth-scopes);
	// else the deny's error_description is code.
	status int
	scopes string
	code   string
}

// shapeFixture is a provider's verifier block (by its docs marker) with
// the route that uses it and the tokens it must accept or refuse.
type shapeFixture struct {
	block    string
	verifier string
	// scopes are the route's required_scopes.
	scopes []string
	// discovered is whether keys must come from a discovery document.
	discovered bool
	tokens     []tokenCase
}

var (
	entraTenant = "11111111-2222-3333-4444-555555555555"
	entraAPI    = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	entraClient = "cccccccc-0000-4000-8000-000000000001"
	entraV2Iss  = "https://login.microsoftonline.com/" + entraTenant + "/v2.0"
	entraV1Iss  = "https://sts.windows.net/" + entraTenant + "/"
)

// Claims as each provider documents its access tokens.
func entraV2Delegated() map[string]any {
	return map[string]any{
		"iss": entraV2Iss, "aud": entraAPI, "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
		"ver": "2.0", "tid": entraTenant, "oid": "00000000-0000-0000-66f3-3332eca7ea81",
		"azp": entraClient, "azpacr": "1", "scp": "Mcp.Read Mcp.Write",
		"name": "Alice", "preferred_username": "alice@contoso.example", "uti": "fqiBqXLPj0eQa82S-IYFAA", "rh": "0.AAAA",
	}
}

func entraV2AppOnly(roles ...string) map[string]any {
	return map[string]any{
		"iss": entraV2Iss, "aud": entraAPI, "sub": "00000000-0000-0000-aaaa-000000000002",
		"ver": "2.0", "tid": entraTenant, "oid": "00000000-0000-0000-aaaa-000000000002",
		"azp": entraClient, "azpacr": "1", "roles": roles, "idtyp": "app",
	}
}

func entraV1Delegated() map[string]any {
	return map[string]any{
		"iss": entraV1Iss, "aud": "api://" + entraAPI, "sub": "l3_roISQU222bULS9yi2k0XpqpOiMz5H3ZACo1GeXA",
		"ver": "1.0", "tid": entraTenant, "oid": "00000000-0000-0000-66f3-3332eca7ea81",
		"appid": entraClient, "appidacr": "1", "scp": "Mcp.Read",
		"upn": "alice@contoso.example", "unique_name": "alice@contoso.example", "idp": "https://sts.windows.net/" + entraTenant + "/",
	}
}

func entraV1AppOnly() map[string]any {
	return map[string]any{
		"iss": entraV1Iss, "aud": "api://" + entraAPI, "sub": "00000000-0000-0000-aaaa-000000000002",
		"ver": "1.0", "tid": entraTenant, "oid": "00000000-0000-0000-aaaa-000000000002",
		"appid": entraClient, "appidacr": "1", "roles": []string{"Mcp.Read"},
	}
}

func with(c map[string]any, kv ...any) map[string]any {
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
			continue
		}
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

const (
	oktaIss    = "https://example.okta.com/oauth2/default"
	auth0Iss   = "https://example-tenant.us.auth0.com/"
	cognitoIss = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_EXAMPLE1"
	cognitoApp = "3n4b5urk1ft4fl3mg5e62d9ado"
	kcIss      = "https://sso.example.com/realms/mcp"
	resource   = "https://mcp.example.com/mcp"
	googleSA   = "mcp-agent@example-project.iam.gserviceaccount.com"
)

func oktaToken() map[string]any {
	return map[string]any{
		"ver": 1, "jti": "AT.u3EvC0s8WvFEcZbRzOGOU6lCOVQXNlvV-ZsfIfdqfEU", "iss": oktaIss, "aud": "api://mcp",
		"cid": "0oa1abcdefGHIJKLM357", "uid": "00u1abcdefGHIJKLM357", "scp": []string{"openid", "mcp:read"},
		"sub": "alice@example.com", "auth_time": time.Now().Add(-time.Hour).Unix(),
	}
}

func auth0Token() map[string]any {
	return map[string]any{
		"iss": auth0Iss, "sub": "auth0|5f7c8ec7c33c6c004bbafe82", "aud": []string{resource, auth0Iss + "userinfo"},
		"azp": "my0Auth0ClientIdxxxxxxxxxxxxxxxx", "scope": "openid profile mcp:read",
		"permissions": []string{"mcp:read", "mcp:write"},
	}
}

func auth0M2M() map[string]any {
	return map[string]any{
		"iss": auth0Iss, "sub": "my0Auth0ClientIdxxxxxxxxxxxxxxxx@clients", "aud": resource,
		"azp": "my0Auth0ClientIdxxxxxxxxxxxxxxxx", "gty": "client-credentials", "scope": "mcp:read",
		"permissions": []string{"mcp:read"},
	}
}

func googleToken(iss string) map[string]any {
	return map[string]any{
		"iss": iss, "azp": "112233445566778899000", "aud": resource, "sub": "112233445566778899000",
		"email": googleSA, "email_verified": true,
	}
}

func cognitoAccess() map[string]any {
	return map[string]any{
		"sub": "aaaaaaaa-bbbb-cccc-dddd-000000000003", "cognito:groups": []string{"mcp-users"},
		"iss": cognitoIss, "version": 2, "client_id": cognitoApp,
		"origin_jti": "bbbbbbbb-cccc-dddd-eeee-000000000004", "event_id": "cccccccc-dddd-eeee-ffff-000000000005",
		"token_use": "access", "scope": "https://mcp.example.com/mcp.read aws.cognito.signin.user.admin",
		"auth_time": time.Now().Add(-time.Hour).Unix(), "jti": "dddddddd-eeee-ffff-0000-000000000006", "username": "alice",
	}
}

func keycloakToken() map[string]any {
	return map[string]any{
		"jti": "trrtcc:5dd04c73-ffb4-6d1d-4076-ebebf3b76ffd", "iss": kcIss,
		"aud": []string{"tokengate", resource}, "sub": "53af5bcf-ec34-4f21-b893-cbb094e2c8e3",
		"typ": "Bearer", "azp": "mcp-agent", "scope": "mcp:read mcp:write",
	}
}

func fixtures() []shapeFixture {
	return []shapeFixture{
		{block: "okta-custom", verifier: "okta", scopes: []string{"mcp:read"}, discovered: true, tokens: []tokenCase{
			{name: "user token, scp array", claims: oktaToken(), status: 200, scopes: "openid mcp:read"},
			{name: "client credentials", claims: with(oktaToken(), "sub", "0oa1abcdefGHIJKLM357", "uid", nil, "scp", []string{"mcp:read"}), status: 200, scopes: "mcp:read"},
			{name: "scope not granted", claims: with(oktaToken(), "scp", []string{"openid"}), status: 403, code: "scope_insufficient"},
			{name: "org authorization server token", claims: with(oktaToken(), "iss", "https://example.okta.com", "aud", "https://example.okta.com"), status: 401, code: "issuer_untrusted"},
		}},
		{block: "entra-v2", verifier: "entra", scopes: []string{"Mcp.Read"}, discovered: true, tokens: []tokenCase{
			{name: "v2 delegated, scp", claims: entraV2Delegated(), status: 200, scopes: "Mcp.Read Mcp.Write"},
			{name: "v2 app-only, roles", claims: entraV2AppOnly("Mcp.Read"), status: 200, scopes: "Mcp.Read"},
			{name: "v2 app-only without the role", claims: entraV2AppOnly("Other.Role"), status: 403, code: "scope_insufficient"},
			{name: "another tenant", claims: with(entraV2Delegated(), "tid", "99999999-2222-3333-4444-555555555555"), status: 401, code: "claim_mismatch"},
			{name: "no tid", claims: with(entraV2Delegated(), "tid", nil), status: 401, code: "claim_mismatch"},
			{name: "a v1 token", claims: entraV1Delegated(), status: 401, code: "issuer_untrusted"},
		}},
		{block: "entra-v1", verifier: "entra-v1", scopes: []string{"Mcp.Read"}, tokens: []tokenCase{
			{name: "v1 delegated, scp", claims: entraV1Delegated(), status: 200, scopes: "Mcp.Read"},
			{name: "v1 app-only, roles", claims: entraV1AppOnly(), status: 200, scopes: "Mcp.Read"},
			{name: "v1 token with the v2 audience form", claims: with(entraV1Delegated(), "aud", entraAPI), status: 401, code: "audience_mismatch"},
		}},
		{block: "entra-both", verifier: "entra", scopes: []string{"Mcp.Read"}, discovered: true, tokens: []tokenCase{
			{name: "v1 delegated", claims: entraV1Delegated(), status: 200, scopes: "Mcp.Read"},
			{name: "v1 app-only", claims: entraV1AppOnly(), status: 200, scopes: "Mcp.Read"},
			{name: "v2 delegated", claims: entraV2Delegated(), status: 200, scopes: "Mcp.Read Mcp.Write"},
			{name: "v2 app-only", claims: entraV2AppOnly("Mcp.Read"), status: 200, scopes: "Mcp.Read"},
			{name: "another tenant's issuer", claims: with(entraV2Delegated(), "iss", "https://login.microsoftonline.com/99999999-2222-3333-4444-555555555555/v2.0"), status: 401, code: "issuer_untrusted"},
		}},
		{block: "auth0", verifier: "auth0", scopes: []string{"mcp:write"}, discovered: true, tokens: []tokenCase{
			{name: "user token with permissions", claims: auth0Token(), status: 200, scopes: "mcp:read mcp:write"},
			{name: "scope without the permission", claims: with(auth0Token(), "scope", "openid mcp:read mcp:write", "permissions", []string{"mcp:read"}), status: 403, code: "scope_insufficient"},
			{name: "machine to machine without mcp:write", claims: auth0M2M(), status: 403, code: "scope_insufficient"},
			{name: "machine to machine", claims: with(auth0M2M(), "permissions", []string{"mcp:read", "mcp:write"}), status: 200, scopes: "mcp:read mcp:write"},
			{name: "issuer without the trailing slash", claims: with(auth0Token(), "iss", strings.TrimSuffix(auth0Iss, "/")), status: 401, code: "issuer_untrusted"},
			{name: "no audience parameter: userinfo only", claims: with(auth0Token(), "aud", auth0Iss+"userinfo"), status: 401, code: "audience_mismatch"},
		}},
		{block: "google", verifier: "google", discovered: true, tokens: []tokenCase{
			{name: "issuer https://accounts.google.com", claims: googleToken("https://accounts.google.com"), status: 200, scopes: ""},
			{name: "issuer accounts.google.com", claims: googleToken("accounts.google.com"), status: 200, scopes: ""},
			{name: "another service account", claims: with(googleToken("accounts.google.com"), "email", "intruder@example-project.iam.gserviceaccount.com"), status: 401, code: "claim_mismatch"},
			{name: "an ID token for the OAuth client", claims: with(googleToken("https://accounts.google.com"), "aud", "112233445566-abc.apps.googleusercontent.com"), status: 401, code: "audience_mismatch"},
			{name: "issuer http://accounts.google.com", claims: googleToken("http://accounts.google.com"), status: 401, code: "issuer_untrusted"},
		}},
		{block: "cognito", verifier: "cognito", scopes: []string{"https://mcp.example.com/mcp.read"}, discovered: true, tokens: []tokenCase{
			{name: "user access token, client_id and no aud", claims: cognitoAccess(), status: 200, scopes: "https://mcp.example.com/mcp.read aws.cognito.signin.user.admin"},
			{name: "client credentials", claims: with(cognitoAccess(), "sub", cognitoApp, "username", nil, "cognito:groups", nil, "scope", "https://mcp.example.com/mcp.read"), status: 200, scopes: "https://mcp.example.com/mcp.read"},
			{name: "another app client", claims: with(cognitoAccess(), "client_id", "7otherappclient0000000000"), status: 401, code: "audience_mismatch"},
			{name: "an ID token", claims: with(cognitoAccess(), "client_id", nil, "scope", nil, "aud", cognitoApp, "token_use", "id"), status: 401, code: "audience_mismatch"},
			{name: "token_use id with the client_id", claims: with(cognitoAccess(), "token_use", "id"), status: 401, code: "claim_mismatch"},
		}},
		{block: "keycloak", verifier: "keycloak", scopes: []string{"mcp:read"}, discovered: true, tokens: []tokenCase{
			{name: "client credentials with the audience mapper", claims: keycloakToken(), status: 200, scopes: "mcp:read mcp:write"},
			{name: "no audience mapper", claims: with(keycloakToken(), "aud", "account"), status: 401, code: "audience_mismatch"},
			{name: "optional scope not asked for", claims: with(keycloakToken(), "scope", "profile email"), status: 403, code: "scope_insufficient"},
		}},
	}
}

// TestProviderShapes verifies each provider's documented token shapes with
// the verifier block of docs/identity-providers.md. Every token is checked
// twice: the second answer may come from the verified-token cache and
// must be the same.
func TestProviderShapes(t *testing.T) {
	blocks := docBlocks(t)
	s := newSigner(t)
	seen := map[string]bool{}
	for _, f := range fixtures() {
		seen[f.block] = true
		t.Run(f.block, func(t *testing.T) {
			block, ok := blocks[f.block]
			require.True(t, ok, "docs/identity-providers.md has no block %q", f.block)
			require.Contains(t, block, "\n  "+f.verifier+":\n")
			var issuers []string
			for _, tc := range f.tokens {
				if iss, _ := tc.claims["iss"].(string); !slices.Contains(issuers, iss) {
					issuers = append(issuers, iss)
				}
			}
			p := &idp{issuers: issuers, jwks: s.jwks}
			route := "routes:\n  - name: mcp\n    match: {path_prefix: /mcp}\n    verifiers: [" + f.verifier + "]\n"
			if len(f.scopes) > 0 {
				route += "    required_scopes: [" + strings.Join(f.scopes, ", ") + "]\n"
			}
			svc := policy(t, block+route, p)
			for _, tc := range f.tokens {
				t.Run(tc.name, func(t *testing.T) {
					tok := s.mint(t, tc.claims)
					for range 2 {
						d := check(t, svc, "/mcp", tok)
						require.Equal(t, tc.status, d.status, d.body)
						if tc.status == http.StatusOK {
							assert.Equal(t, f.verifier, d.verifier)
							assert.Equal(t, tc.claims["iss"], d.iss)
							assert.Equal(t, tc.scopes, d.scopes)
							continue
						}
						var body struct {
							Description string `json:"error_description"`
						}
						require.NoError(t, json.Unmarshal([]byte(d.body), &body), d.body)
						assert.Equal(t, tc.code, body.Description)
					}
				})
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			discovery := slices.ContainsFunc(p.urls, func(u string) bool { return strings.Contains(u, "/.well-known/") })
			assert.Equal(t, f.discovered, discovery, "keys through discovery: %v", p.urls)
		})
	}
	for name := range blocks {
		assert.True(t, seen[name], "docs block %q has no fixture", name)
	}
}

// TestAudienceClaimOnCacheHits: the verified-token cache re-checks a
// remembered token's audience for each route; with audience_claim it must
// re-check that claim, not "aud". The token's aud names route b and its
// "resource" claim route a: only route a may accept it, before and after
// it is cached.
func TestAudienceClaimOnCacheHits(t *testing.T) {
	s := newSigner(t)
	const iss = "https://idp.example"
	p := &idp{issuers: []string{iss}, jwks: s.jwks}
	svc := policy(t, `
verifiers:
  custom:
    type: jwt
    issuer: `+iss+`
    audience_claim: resource
routes:
  - name: a
    match: {path_prefix: /a}
    verifiers: [custom]
    resource: https://a.example/mcp
  - name: b
    match: {path_prefix: /b}
    verifiers: [custom]
    resource: https://b.example/mcp
`, p)
	tok := s.mint(t, map[string]any{"iss": iss, "sub": "alice", "aud": "https://b.example/mcp", "resource": "https://a.example/mcp"})
	for _, path := range []string{"/a", "/a", "/b", "/a", "/b"} {
		d := check(t, svc, path, tok)
		if path == "/a" {
			assert.Equal(t, http.StatusOK, d.status, "%s: %s", path, d.body)
			continue
		}
		assert.Equal(t, http.StatusUnauthorized, d.status, path)
		assert.JSONEq(t, `{"error":"invalid_token","error_description":"audience_mismatch"}`, d.body)
	}
	// The other way round, b first.
	tok = s.mint(t, map[string]any{"iss": iss, "sub": "bob", "aud": "https://a.example/mcp", "resource": "https://b.example/mcp"})
	for _, path := range []string{"/b", "/a", "/b", "/a"} {
		d := check(t, svc, path, tok)
		want := http.StatusOK
		if path == "/a" {
			want = http.StatusUnauthorized
		}
		assert.Equal(t, want, d.status, "%s: %s", path, d.body)
	}
}
