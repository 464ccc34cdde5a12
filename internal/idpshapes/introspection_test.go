package idpshapes

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestForeignJWTRefusedByIntrospection reproduces a certified OpenID
// provider seen in the field: a route with a jwt verifier and an
// introspection verifier gets a JWT from an issuer no jwt verifier knows,
// so the token goes to introspection, and the provider answers 400
// unsupported_token_type. That is the provider refusing the token: 401
// invalid_token, so the client re-authenticates, never a 503 it would retry.
func TestForeignJWTRefusedByIntrospection(t *testing.T) {
	tests := []struct {
		name, body string
	}{
		{"unsupported_token_type", `{"error":"unsupported_token_type","error_description":"The token type is not supported"}`},
		{"invalid_token", `{"error":"invalid_token","error_description":"Token was not issued by this server"}`},
		{"invalid_request", `{"error":"invalid_request"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var asked atomic.Int32
			provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				asked.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(provider.Close)
			s := newSigner(t)
			const iss = "https://idp.example"
			svc := policy(t, `
verifiers:
  local:
    type: jwt
    issuer: `+iss+`
  opaque:
    type: introspection
    introspection_url: `+provider.URL+`/introspect
    client_id: tokengate
    client_secret: s3cret
routes:
  - name: mcp
    match: {path_prefix: /mcp}
    verifiers: [local, opaque]
    resource: https://mcp.example.com/mcp
`, &idp{issuers: []string{iss}, jwks: s.jwks})
			foreign := s.mint(t, map[string]any{"iss": "https://elsewhere.example", "sub": "mallory", "aud": resource, "scope": "mcp:read"})
			d := check(t, svc, "/mcp", foreign)
			require.Equal(t, int32(1), asked.Load(), "the foreign JWT goes to introspection")
			assert.Equal(t, http.StatusUnauthorized, d.status)
			assert.JSONEq(t, `{"error":"invalid_token","error_description":"token_inactive"}`, d.body)
		})
	}
}
