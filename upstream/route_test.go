package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/config"
)

// loadConfig writes body and loads it as tokengate would.
func loadConfig(t *testing.T, body string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokengate.yaml")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	cfg, err := config.Load(path, nil)
	require.NoError(t, err)
	return cfg
}

// TestBuildRoutes builds every mode from a configuration file and checks
// each route's Authorization value.
func TestBuildRoutes(t *testing.T) {
	p := newIDP(t, issue(300))
	key := newKeyFile(t, "ES256")
	cfg := loadConfig(t, `
assertion:
  issuer: https://tokengate.test
  key_file: `+key+`
  kid: tg-1
verifiers:
  okta: {type: jwt, issuer: https://idp.test, jwks_uri: https://idp.test/keys, audiences: [api://mcp]}
routes:
  - {name: none, match: {path_prefix: /none}, verifiers: [okta]}
  - {name: alias, match: {path_prefix: /alias}, verifiers: [okta], forward_authorization: true}
  - name: signed
    match: {path_prefix: /signed}
    verifiers: [okta]
    upstream_token: {mode: assertion, audience: https://backend.internal, ttl: 2m}
  - name: exchanged
    match: {path_prefix: /exchanged}
    verifiers: [okta]
    upstream_token:
      mode: exchange
      audience: backend
      token_endpoint: `+p.srv.URL+`
      client_id: tokengate
      client_secret_env: EXCHANGE_SECRET
      client_auth: post
`)
	c := newClock()
	set, err := Build(cfg, Options{Now: c.Now, Lookup: func(k string) (string, bool) {
		return map[string]string{"EXCHANGE_SECRET": testSecret}[k], k == "EXCHANGE_SECRET"
	}})
	require.NoError(t, err)
	require.Len(t, set.Routes, 4)
	req := Request{Token: subjectToken, Identity: alice}
	ctx := context.Background()

	var modes []string
	for _, r := range set.Routes {
		modes = append(modes, r.Mode())
	}
	assert.Equal(t, []string{"none", "forward", "assertion", "exchange"}, modes)

	got, err := set.Routes[0].Authorization(ctx, req)
	require.NoError(t, err)
	assert.Empty(t, got, "mode none: remove Authorization")

	got, err = set.Routes[1].Authorization(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, "Bearer "+subjectToken, got)

	got, err = set.Routes[2].Authorization(ctx, req)
	require.NoError(t, err)
	hashed, err := set.Routes[2].AuthorizationHashed(ctx, HashToken(req.Token), req)
	require.NoError(t, err)
	assert.Equal(t, got, hashed, "the same cache entry")
	claims, kid := verifyWith(t, set.JWKS(), strings.TrimPrefix(got, "Bearer "))
	assert.Equal(t, "tg-1", kid)
	assert.Equal(t, "https://backend.internal", claims["aud"])
	assert.Equal(t, "signed", claims["tg_route"])
	assert.Equal(t, float64(c.Now().Unix()+120), claims["exp"])

	got, err = set.Routes[3].Authorization(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, "Bearer "+issuedToken, got)
	assert.Equal(t, testSecret, p.forms[0].Get("client_secret"))

	var nilRoute *Route
	got, err = nilRoute.Authorization(ctx, req)
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Nil(t, (*Set)(nil).JWKS())
}

// TestBuildErrors checks that problems found while building name their key
// path and never hold a secret.
func TestBuildErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	base := `
verifiers:
  okta: {type: jwt, issuer: https://idp.test, jwks_uri: https://idp.test/keys, audiences: [api://mcp]}
routes:
  - name: exchanged
    match: {path_prefix: /x}
    verifiers: [okta]
    upstream_token:
      mode: exchange
      audience: backend
      client_id: tokengate
`
	tests := []struct {
		name, body, want string
	}{
		{"secret env unset", base + "      client_secret_env: NOT_SET_ANYWHERE\n",
			"routes[0].upstream_token.client_secret_env: environment variable NOT_SET_ANYWHERE is not set"},
		{"secret file empty", base + "      client_secret_file: " + empty + "\n",
			"routes[0].upstream_token.client_secret_file: " + empty + " is empty"},
		{"assertion key unreadable", `
assertion: {issuer: https://tokengate.test, key_file: ` + filepath.Join(dir, "missing.pem") + `}
verifiers:
  okta: {type: jwt, issuer: https://idp.test, jwks_uri: https://idp.test/keys, audiences: [api://mcp]}
routes:
  - {name: mcp, match: {path_prefix: /}, verifiers: [okta]}
`, "assertion.key_file: reading key file " + filepath.Join(dir, "missing.pem")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := loadConfig(t, tt.body)
			_, err := Build(cfg, Options{Lookup: func(string) (string, bool) { return "", false }})
			var cerr *config.Error
			require.True(t, errors.As(err, &cerr), "got %v", err)
			require.Len(t, cerr.Problems, 1)
			assert.True(t, strings.HasPrefix(cerr.Problems[0].String(), tt.want), "got %q", cerr.Problems[0].String())
		})
	}
}

// TestBuildDiscoversFromVerifierIssuer checks that a route without
// token_endpoint exchanges at the endpoint its verifier's issuer publishes.
func TestBuildDiscoversFromVerifierIssuer(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":%q,"token_endpoint":%q}`, srv.URL, srv.URL+"/token")
	})
	var form url.Values
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		form = r.PostForm
		issue(300)(w, r)
	})
	cfg := loadConfig(t, `
verifiers:
  idp: {type: jwt, issuer: `+srv.URL+`, jwks_uri: `+srv.URL+`/keys, audiences: [api://mcp]}
routes:
  - name: exchanged
    match: {path_prefix: /}
    verifiers: [idp]
    upstream_token: {mode: exchange, audience: backend, client_id: tokengate, client_secret: `+"s3cret"+`, scopes: [backend:read]}
`)
	set, err := Build(cfg, Options{})
	require.NoError(t, err)
	got, err := set.Routes[0].Authorization(context.Background(), Request{Token: subjectToken, Identity: alice})
	require.NoError(t, err)
	assert.Equal(t, "Bearer "+issuedToken, got)
	assert.Equal(t, "backend", form.Get("audience"))
	assert.Equal(t, "backend:read", form.Get("scope"))
}
