package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/internal/stack"
	"github.com/tokengate/tokengate/keys"
)

// TestUpstreamAssertion: on a route with upstream_token mode assertion the
// upstream receives tokengate's signed JWT in place of the client's token,
// and mcp-sample --verify-assertion (the official SDK's bearer middleware
// with tokengate's JWKS) accepts it, while a request that goes around
// Envoy with a forged assertion, the client's own token or none is refused.
func TestUpstreamAssertion(t *testing.T) {
	const (
		assertionIssuer = "https://tokengate.e2e.test"
		backend         = "https://mcp-backend.internal"
	)
	keyDir := t.TempDir()
	_, err := keys.Generate("ES256", "tg-1", filepath.Join(keyDir, "tg"))
	require.NoError(t, err)
	_, err = keys.Generate("ES256", "tg-1", filepath.Join(keyDir, "forger")) // same kid, another key
	require.NoError(t, err)
	var sampleURL string
	e := startEnv(t, envOptions{
		topLevel: fmt.Sprintf("assertion:\n  issuer: %s\n  key_file: %s\n  kid: tg-1\n",
			assertionIssuer, filepath.Join(keyDir, "tg", keys.PrivateKeyFile)),
		mcpRoute: "    upstream_token: {mode: assertion, audience: " + backend + ", ttl: 5m}\n",
		mcpSampleArgs: func(p stack.Ports) []string {
			sampleURL = fmt.Sprintf("http://127.0.0.1:%d/mcp", p.Upstream)
			return []string{"--verify-assertion", fmt.Sprintf("http://127.0.0.1:%d/.well-known/jwks.json", p.HTTP), "--audience", backend}
		},
	})
	client := e.mint(t, "es", "ES256", nil)

	t.Run("the upstream sees tokengate's assertion, never the client's token", func(t *testing.T) {
		who := e.whoamiWith(t, client)
		assert.Equal(t, "Bearer", who["authorization_scheme"])
		claims, ok := who["authorization_claims"].(map[string]any)
		require.True(t, ok, "whoami shows the assertion's claims: %v", who)
		assert.Equal(t, assertionIssuer, claims["iss"])
		assert.Equal(t, backend, claims["aud"])
		assert.Equal(t, "alice", claims["sub"])
		assert.Equal(t, "mcp", claims["tg_route"])
		assert.Equal(t, "mcp:read mcp:write", claims["scope"])
		assert.NotEqual(t, e.issuer, claims["iss"], "the client's token went upstream")
	})

	t.Run("the assertion JWKS is served on the HTTP port", func(t *testing.T) {
		resp, body := get(t, e.stack.TokengateHTTP()+"/.well-known/jwks.json")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, body, `"kid":"tg-1"`)
		assert.NotContains(t, body, `"d":`, "a private key member")
	})

	forged, err := keys.Mint(keys.MintOptions{
		KeyFile: filepath.Join(keyDir, "forger", keys.PrivateKeyFile), Alg: "ES256", Kid: "tg-1",
		Issuer: assertionIssuer, Audience: []string{backend}, Subject: "mallory", Scope: "mcp:read mcp:write",
		TTL: 5 * time.Minute,
	})
	require.NoError(t, err)
	for _, tc := range []struct{ name, authorization string }{
		{"a forged assertion (same kid, another key)", "Bearer " + forged},
		{"the client's own token", "Bearer " + client},
		{"no credential", ""},
	} {
		t.Run("around Envoy: "+tc.name+" is refused", func(t *testing.T) {
			h := map[string]string{}
			if tc.authorization != "" {
				h["Authorization"] = tc.authorization
			}
			resp, _, err := initialize(http.DefaultClient, sampleURL, h)
			require.NoError(t, err)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		})
	}
}
