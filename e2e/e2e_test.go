package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/keys"
)

func TestThroughEnvoy(t *testing.T) {
	e := startEnv(t, envOptions{})
	metadataURL := strings.Replace(e.resource, "/mcp", "/.well-known/oauth-protected-resource/mcp", 1)

	t.Run("valid token lists tools and whoami shows the identity", func(t *testing.T) {
		for key, alg := range map[string]string{"rs": "RS256", "es": "ES256"} {
			t.Run(alg, func(t *testing.T) {
				s, err := e.connect(t, bearer(e.mint(t, key, alg, nil)))
				require.NoError(t, err)
				defer s.Close()
				tools, err := s.ListTools(context.Background(), nil)
				require.NoError(t, err)
				var names []string
				for _, tool := range tools.Tools {
					names = append(names, tool.Name)
				}
				assert.ElementsMatch(t, []string{"echo", "whoami", "admin_reset"}, names)
				who := whoami(t, s)
				assert.Equal(t, "alice", who["x-auth-sub"])
				assert.Equal(t, "mcp:read mcp:write", who["x-auth-scopes"])
				assert.Equal(t, "idp", who["x-auth-verifier"])
				assert.Equal(t, e.issuer, who["x-auth-iss"])
				assert.Equal(t, false, who["authorization_present"], "Authorization must not reach the upstream")
			})
		}
	})

	t.Run("client-sent identity headers never reach the upstream", func(t *testing.T) {
		s, err := e.connect(t, map[string]string{
			"Authorization":    "Bearer " + e.mint(t, "rs", "RS256", nil),
			"X-Auth-Sub":       "mallory",
			"X-Auth-Client-Id": "evil-client",
			"X-AUTH-SCOPES":    "admin",
		})
		require.NoError(t, err)
		defer s.Close()
		who := whoami(t, s)
		assert.Equal(t, "alice", who["x-auth-sub"])
		assert.Equal(t, "mcp:read mcp:write", who["x-auth-scopes"])
		assert.NotContains(t, who, "x-auth-client-id", "token has no client_id, so the spoofed one must be stripped")
	})

	t.Run("no token is 401 with the resource metadata challenge", func(t *testing.T) {
		resp, body := e.post(t, "/mcp", nil)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Equal(t, `Bearer scope="mcp:read", resource_metadata="`+metadataURL+`"`, resp.Header.Get("WWW-Authenticate"))
		assert.JSONEq(t, `{"error":"invalid_request","error_description":"missing bearer token"}`, body)

		_, err := e.connect(t, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "Unauthorized")
	})

	t.Run("token without the scope is 403 insufficient_scope", func(t *testing.T) {
		tok := e.mint(t, "es", "ES256", func(o *keys.MintOptions) { o.Scope = "mcp:write" })
		resp, body := e.post(t, "/mcp", map[string]string{"Authorization": "Bearer " + tok})
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		assert.Equal(t, `Bearer error="insufficient_scope", error_description="scope_insufficient", scope="mcp:read", resource_metadata="`+metadataURL+`"`,
			resp.Header.Get("WWW-Authenticate"))
		assert.JSONEq(t, `{"error":"insufficient_scope","error_description":"scope_insufficient"}`, body)
	})

	t.Run("expired token is 401 invalid_token", func(t *testing.T) {
		tok := e.mint(t, "rs", "RS256", func(o *keys.MintOptions) { o.Now = time.Now().Add(-3 * time.Hour) })
		resp, body := e.post(t, "/mcp", map[string]string{"Authorization": "Bearer " + tok})
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Equal(t, `Bearer error="invalid_token", error_description="token_expired", scope="mcp:read", resource_metadata="`+metadataURL+`"`,
			resp.Header.Get("WWW-Authenticate"))
		assert.JSONEq(t, `{"error":"invalid_token","error_description":"token_expired"}`, body)
		assert.NotContains(t, body, tok)
	})

	t.Run("wrong audience is 401 audience_mismatch", func(t *testing.T) {
		tok := e.mint(t, "rs", "RS256", func(o *keys.MintOptions) { o.Audience = []string{"https://elsewhere.example/mcp"} })
		resp, body := e.post(t, "/mcp", map[string]string{"Authorization": "Bearer " + tok})
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.JSONEq(t, `{"error":"invalid_token","error_description":"audience_mismatch"}`, body)
	})

	t.Run("no route is 403 access_denied", func(t *testing.T) {
		resp, body := e.post(t, "/other", map[string]string{"Authorization": "Bearer " + e.mint(t, "rs", "RS256", nil)})
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		assert.JSONEq(t, `{"error":"access_denied","error_description":"no route"}`, body)
	})

	t.Run("protected resource metadata is answered through Envoy", func(t *testing.T) {
		resp, err := http.Get(metadataURL)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		assert.JSONEq(t, `{"resource":"`+e.resource+`","authorization_servers":["`+e.issuer+`"],"scopes_supported":["mcp:read"],"bearer_methods_supported":["header"],"dpop_signing_alg_values_supported":["ES256","ES384","EdDSA","RS256","PS256"]}`, string(b))
	})
}
