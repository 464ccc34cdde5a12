package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/internal/envoycfg"
	"github.com/tokengate/tokengate/keys"
)

// TestIdentityHeadersNeverSpoofed (issue 10, finding 2): a client sends every
// spelling of every protected header (letter case, "_" for "-", repeated
// values) through the real Envoy to a header-echo upstream, on an anonymous
// and on an authenticated route. The upstream must see no identity header
// but tokengate's own values, in any spelling that a WSGI/CGI-style
// upstream would read as the same variable. The shipped Envoy template
// does not reject underscore headers: tokengate must not rely on it.
func TestIdentityHeadersNeverSpoofed(t *testing.T) {
	e := startEnv(t, envOptions{
		mcpRoute: "    claim_headers: {x-user-email: email}\n",
		routes: func(e *env) string {
			return `  - name: anon
    match: {path_prefix: /anon}
    allow_anonymous: true
  - name: authn
    match: {path_prefix: /authn}
    verifiers: [idp]
    resource: ` + e.resource + `
    claim_headers: {x-user-email: email}
`
		},
		envoyRoutes: []envoycfg.Route{
			{Prefix: "/anon", PrefixRewrite: "/headers"},
			{Prefix: "/authn", PrefixRewrite: "/headers"},
		},
	})
	token := e.mint(t, "es", "ES256", func(o *keys.MintOptions) {
		o.Claims = map[string]any{"email": "alice@example.com", "client_id": "app-1"}
	})
	protected := []string{"x-auth-sub", "x-auth-iss", "x-auth-scopes", "x-auth-client-id", "x-auth-verifier",
		"x-auth-mcp-method", "x-auth-mcp-name", "x-auth-role", "x-user-email", "proxy-authorization"}
	spellings := func(name string) []string {
		under := strings.ReplaceAll(name, "-", "_")
		return []string{name, strings.ToUpper(name), under, strings.ToUpper(under), strings.Title(under)} //nolint:staticcheck // a spelling, not prose
	}

	echo := func(t *testing.T, path string, authorization string) map[string][]string {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, e.stack.EnvoyURL()+path, nil)
		require.NoError(t, err)
		// Envoy accepts at most 100 header lines: every spelling once, the
		// plain name twice.
		for _, name := range protected {
			for _, sp := range spellings(name) {
				req.Header[sp] = []string{"evil"} // this exact spelling
			}
			req.Header[name] = []string{"evil", "evil-again"}
		}
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, body)
		var got map[string][]string
		require.NoError(t, json.Unmarshal(body, &got))
		// Fold names as a WSGI/CGI upstream does.
		folded := map[string][]string{}
		for k, vs := range got {
			k = strings.ReplaceAll(strings.ToLower(k), "_", "-")
			folded[k] = append(folded[k], vs...)
		}
		return folded
	}

	t.Run("anonymous route: no identity header reaches the upstream", func(t *testing.T) {
		got := echo(t, "/anon", "")
		for _, name := range protected {
			if name == "proxy-authorization" {
				continue // an anonymous route forwards credentials untouched: nothing there is tokengate's
			}
			assert.Empty(t, got[name], "%s reached the upstream: %v", name, got[name])
		}
	})

	t.Run("authenticated route: only tokengate's values", func(t *testing.T) {
		got := echo(t, "/authn", "Bearer "+token)
		want := map[string][]string{
			"x-auth-sub":       {"alice"},
			"x-auth-iss":       {e.issuer},
			"x-auth-scopes":    {"mcp:read mcp:write"},
			"x-auth-client-id": {"app-1"},
			"x-auth-verifier":  {"idp"},
			"x-user-email":     {"alice@example.com"},
		}
		for _, name := range protected {
			assert.Equal(t, want[name], got[name], "%s as the upstream reads it", name)
		}
		assert.Empty(t, got["authorization"], "the client's token reached the upstream")
	})
}
