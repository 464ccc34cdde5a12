package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/internal/envoycfg"
	"github.com/tokengate/tokengate/keys"
)

// TestPinnedRoutesThroughEnvoy pins tokengate routes from Envoy with the
// ext_authz per-route context extension tokengate_route. Envoy's routes
// /mcp/admin, /mcp/open and /mcp/ghost all rewrite to the upstream's /mcp;
// by path every one of them would be tokengate's "mcp" route (path_prefix
// /mcp), but the pin selects "admin" (scope mcp:admin, its own resource),
// "open" (anonymous) or the unknown "ghost". Neither pinned route can be
// reached by its own match.
func TestPinnedRoutesThroughEnvoy(t *testing.T) {
	e := startEnv(t, envOptions{
		routes: func(e *env) string {
			return `
  - name: admin
    match: {path_exact: /only-by-pin/admin}
    verifiers: [idp]
    required_scopes: [mcp:admin]
    resource: ` + e.resource + `/admin
  - name: open
    match: {path_exact: /only-by-pin/open}
    allow_anonymous: true
`
		},
		envoyRoutes: []envoycfg.Route{
			{Prefix: "/mcp/admin", PrefixRewrite: "/mcp", TokengateRoute: "admin"},
			{Prefix: "/mcp/open", PrefixRewrite: "/mcp", TokengateRoute: "open"},
			{Prefix: "/mcp/ghost", PrefixRewrite: "/mcp", TokengateRoute: "ghost"},
		},
	})
	adminResource := e.resource + "/admin"
	adminMetadataURL := strings.Replace(adminResource, "/mcp/admin", "/.well-known/oauth-protected-resource/mcp/admin", 1)
	// A reader for both resources: enough for "mcp", not for "admin".
	reader := e.mint(t, "rs", "RS256", func(o *keys.MintOptions) {
		o.Audience = []string{e.resource, adminResource}
		o.Scope = "mcp:read"
	})

	t.Run("the path alone selects the mcp route", func(t *testing.T) {
		resp, _ := e.post(t, "/mcp", bearer(reader))
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})

	t.Run("the pinned admin route demands its own scope", func(t *testing.T) {
		resp, body := e.post(t, "/mcp/admin", bearer(reader))
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		assert.Equal(t, `Bearer error="insufficient_scope", error_description="scope_insufficient", scope="mcp:admin", resource_metadata="`+adminMetadataURL+`"`,
			resp.Header.Get("WWW-Authenticate"))
		assert.JSONEq(t, `{"error":"insufficient_scope","error_description":"scope_insufficient"}`, body)
	})

	t.Run("the pinned admin route expects its own resource as audience", func(t *testing.T) {
		tok := e.mint(t, "es", "ES256", func(o *keys.MintOptions) { o.Scope = "mcp:read mcp:admin" })
		resp, body := e.post(t, "/mcp/admin", bearer(tok))
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Equal(t, `Bearer error="invalid_token", error_description="audience_mismatch", scope="mcp:admin", resource_metadata="`+adminMetadataURL+`"`,
			resp.Header.Get("WWW-Authenticate"))
		assert.JSONEq(t, `{"error":"invalid_token","error_description":"audience_mismatch"}`, body)
	})

	t.Run("an admin token reaches the upstream through the rewrite", func(t *testing.T) {
		admin := e.mint(t, "rs", "RS256", func(o *keys.MintOptions) {
			o.Audience = []string{adminResource}
			o.Scope = "mcp:admin"
		})
		who := e.whoamiAt(t, "/mcp/admin", bearer(admin))
		assert.Equal(t, map[string]any{
			"x-auth-sub": "alice", "x-auth-iss": e.issuer, "x-auth-scopes": "mcp:admin", "x-auth-verifier": "idp",
			"authorization_present": false,
		}, who)
		// The same token by path: the mcp route wants another audience.
		resp, body := e.post(t, "/mcp", bearer(admin))
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.JSONEq(t, `{"error":"invalid_token","error_description":"audience_mismatch"}`, body)
	})

	t.Run("the pinned open route is anonymous", func(t *testing.T) {
		resp, _ := e.post(t, "/mcp", nil)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "by path, no token is refused")
		resp, _ = e.post(t, "/mcp/open", nil)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, map[string]any{"authorization_present": false}, e.whoamiAt(t, "/mcp/open", nil))
	})

	t.Run("a pin naming an unknown route is 403 access_denied", func(t *testing.T) {
		for name, headers := range map[string]map[string]string{"no token": nil, "valid token": bearer(reader)} {
			resp, body := e.post(t, "/mcp/ghost", headers)
			assert.Equal(t, http.StatusForbidden, resp.StatusCode, name)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), name)
			assert.Empty(t, resp.Header.Values("WWW-Authenticate"), name)
			assert.JSONEq(t, `{"error":"access_denied","error_description":"unknown route in context extension tokengate_route"}`, body, name)
		}
	})
}

// TestAnonymousRouteThroughEnvoy shows that on allow_anonymous routes the
// identity headers a client sends (tokengate's own and a claim_headers
// name of another route) never reach the upstream, and that Authorization
// is removed unless the route sets forward_authorization.
func TestAnonymousRouteThroughEnvoy(t *testing.T) {
	e := startEnv(t, envOptions{
		mcpRoute: "    claim_headers: {x-auth-email: email}\n",
		routes: func(*env) string {
			return `
  - name: public
    match: {path_prefix: /public}
    allow_anonymous: true
  - name: forward
    match: {path_prefix: /forward}
    allow_anonymous: true
    forward_authorization: true
`
		},
		envoyRoutes: []envoycfg.Route{
			{Prefix: "/public", PrefixRewrite: "/mcp"},
			{Prefix: "/forward", PrefixRewrite: "/mcp"},
		},
	})
	tok := e.mint(t, "rs", "RS256", func(o *keys.MintOptions) { o.Claims = map[string]any{"email": "alice@example.com"} })

	// Control: on the mcp route the claim header is tokengate's to set.
	who := e.whoamiWith(t, tok)
	require.Equal(t, "alice@example.com", who["x-auth-email"])

	spoofed := map[string]string{
		"X-Auth-Sub":       "mallory",
		"X-Auth-Iss":       "https://evil.example",
		"X-Auth-Scopes":    "mcp:admin",
		"X-Auth-Verifier":  "idp",
		"X-Auth-Client-Id": "evil-client",
		"X-Auth-Email":     "mallory@evil.example",
	}
	with := func(extra map[string]string) map[string]string {
		h := map[string]string{}
		for k, v := range spoofed {
			h[k] = v
		}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	// Control: the upstream reflects every one of them when reached
	// directly, so their absence below is Envoy and tokengate's doing.
	direct, err := connectURL(t, e.stack.UpstreamURL()+"/mcp", with(bearer(tok)))
	require.NoError(t, err)
	defer direct.Close()
	assert.Equal(t, map[string]any{
		"x-auth-sub": "mallory", "x-auth-iss": "https://evil.example", "x-auth-scopes": "mcp:admin",
		"x-auth-verifier": "idp", "x-auth-client-id": "evil-client", "x-auth-email": "mallory@evil.example",
		"authorization_present": true, "authorization_scheme": "Bearer", "authorization_claims": jwtPayload(t, tok),
	}, whoami(t, direct))

	tests := []struct {
		name, path string
		headers    map[string]string
		want       map[string]any
	}{
		{"anonymous", "/public", with(nil), map[string]any{"authorization_present": false}},
		{"anonymous with a token", "/public", with(bearer(tok)), map[string]any{"authorization_present": false}},
		{"anonymous with another scheme", "/public", with(map[string]string{"Authorization": "Basic YWxpY2U6cHc="}), map[string]any{"authorization_present": false}},
		{"forward_authorization", "/forward", with(bearer(tok)), map[string]any{
			"authorization_present": true, "authorization_scheme": "Bearer", "authorization_claims": jwtPayload(t, tok),
		}},
		{"forward_authorization without a token", "/forward", with(nil), map[string]any{"authorization_present": false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, e.whoamiAt(t, tc.path, tc.headers))
		})
	}
}
