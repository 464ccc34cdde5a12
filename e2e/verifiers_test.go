package e2e

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/tokengate/tokengate/keys"
)

// eventually retries cond until it holds, at most 100 times 100ms apart: it
// waits for a state (a rate-limit window passing), it never asserts on time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 100 {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("never happened: %s", what)
}

func TestEveryJWTKeySourceThroughEnvoy(t *testing.T) {
	e := startEnv(t, envOptions{
		verifiers: func(e *env) string {
			partner := e.newKey(t, "partner", "EdDSA")
			internal := e.newKey(t, "internal", "HS256")
			return `
  partner:
    type: jwt
    issuer: https://partner.example
    public_key_file: ` + filepath.Join(partner, keys.PublicKeyFile) + `
  internal:
    type: jwt
    issuer: internal-services
    hmac_secret_file: ` + filepath.Join(internal, keys.SecretFile) + `
    algorithms: [HS256]
`
		},
		routeVerifiers: []string{"partner", "internal"},
	})
	tests := []struct {
		verifier, key, alg, issuer string
	}{
		{"idp", "rs", "RS256", e.issuer},
		{"idp", "es", "ES256", e.issuer},
		{"partner", "partner", "EdDSA", "https://partner.example"},
		{"internal", "internal", "HS256", "internal-services"},
	}
	for _, tc := range tests {
		t.Run(tc.verifier+"/"+tc.alg, func(t *testing.T) {
			tok := e.mint(t, tc.key, tc.alg, func(o *keys.MintOptions) { o.Issuer = tc.issuer })
			who := e.whoamiWith(t, tok)
			assert.Equal(t, tc.verifier, who["x-auth-verifier"])
			assert.Equal(t, tc.issuer, who["x-auth-iss"])
			assert.Equal(t, "alice", who["x-auth-sub"])
		})
	}
	t.Run("a token signed by another verifier's key is refused", func(t *testing.T) {
		// Signed with the partner's key but claiming the idp issuer: only
		// "idp" is asked, and it does not trust that key, under the
		// partner's kid or under one of its own.
		for kid, code := range map[string]string{"partner": "key_unknown", "rs": "algorithm_not_allowed"} {
			tok := e.mint(t, "partner", "EdDSA", func(o *keys.MintOptions) { o.Kid = kid })
			resp, body := e.post(t, "/mcp", bearer(tok))
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.JSONEq(t, `{"error":"invalid_token","error_description":"`+code+`"}`, body, "kid %s", kid)
		}
	})
}

func TestKeyRotationAndJWKSOutageThroughEnvoy(t *testing.T) {
	e := startEnv(t, envOptions{})
	e.newKey(t, "next", "RS256")
	e.newKey(t, "ghost", "RS256")
	next := e.mint(t, "next", "RS256", nil)

	resp, body := e.post(t, "/mcp", bearer(next))
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.JSONEq(t, `{"error":"invalid_token","error_description":"key_unknown"}`, body)

	// The IdP rotates: the new key appears in its JWKS. Without a restart,
	// the unknown kid triggers a refetch (once the rate-limit window passes).
	e.serveJWKS(t, "rs", "es", "next")
	eventually(t, "the rotated key is accepted", func() bool {
		resp, _ := e.post(t, "/mcp", bearer(next))
		return resp.StatusCode == http.StatusOK
	})
	assert.Equal(t, "alice", e.whoamiWith(t, next)["x-auth-sub"])

	// The IdP goes down: known keys keep working, an unknown kid is a 503.
	e.idp.Close()
	resp, _ = e.post(t, "/mcp", bearer(e.mint(t, "rs", "RS256", nil)))
	assert.Equal(t, http.StatusOK, resp.StatusCode, "cached keys must keep verifying during an outage")
	ghost := e.mint(t, "ghost", "RS256", nil)
	var last *http.Response
	var lastBody string
	eventually(t, "an unknown kid during the outage is a 503", func() bool {
		last, lastBody = e.post(t, "/mcp", bearer(ghost))
		return last.StatusCode == http.StatusServiceUnavailable
	})
	assert.Equal(t, "5", last.Header.Get("Retry-After"))
	assert.Empty(t, last.Header.Get("WWW-Authenticate"))
	assert.JSONEq(t, `{"error":"temporarily_unavailable","error_description":"jwks_unavailable"}`, lastBody)
}

func TestIntrospectionAndStaticThroughEnvoy(t *testing.T) {
	var hits atomic.Int32
	var down atomic.Bool
	introspect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		if id, secret, ok := r.BasicAuth(); !ok || id != "tokengate" || secret != "s3cret" {
			http.Error(w, "bad client", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.PostFormValue("token") {
		case "opaque-alice":
			_, _ = w.Write([]byte(`{"active":true,"sub":"alice","scope":"mcp:read","client_id":"agent-7"}`))
		case "opaque-noscope":
			_, _ = w.Write([]byte(`{"active":true,"sub":"bob","scope":"other"}`))
		default:
			_, _ = w.Write([]byte(`{"active":false}`))
		}
	}))
	t.Cleanup(introspect.Close)
	e := startEnv(t, envOptions{
		verifiers: func(e *env) string {
			return `
  legacy:
    type: introspection
    introspection_url: ` + introspect.URL + `/introspect
    client_id: tokengate
    client_secret: s3cret
  dev:
    type: static
    tokens:
      dev-carol: {sub: carol, scopes: [mcp:read]}
`
		},
		routeVerifiers: []string{"legacy", "dev"},
	})

	who := e.whoamiWith(t, "opaque-alice")
	assert.Equal(t, "legacy", who["x-auth-verifier"])
	assert.Equal(t, "alice", who["x-auth-sub"])
	assert.Equal(t, "agent-7", who["x-auth-client-id"])
	assert.Equal(t, "mcp:read", who["x-auth-scopes"])

	who = e.whoamiWith(t, "dev-carol")
	assert.Equal(t, "dev", who["x-auth-verifier"])
	assert.Equal(t, "carol", who["x-auth-sub"])

	resp, body := e.post(t, "/mcp", bearer("opaque-unknown"))
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.JSONEq(t, `{"error":"invalid_token","error_description":"token_inactive"}`, body)

	resp, _ = e.post(t, "/mcp", bearer("opaque-noscope"))
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	// Active results are cached: the IdP going down does not affect a token
	// it already vouched for, while an unseen token cannot be decided.
	down.Store(true)
	before := hits.Load()
	resp, _ = e.post(t, "/mcp", bearer("opaque-alice"))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, before, hits.Load(), "a cached token needs no introspection request")
	resp, body = e.post(t, "/mcp", bearer("opaque-never-seen"))
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "5", resp.Header.Get("Retry-After"))
	assert.JSONEq(t, `{"error":"temporarily_unavailable","error_description":"introspection_unavailable"}`, body)
}
