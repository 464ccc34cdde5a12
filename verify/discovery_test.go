package verify_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/verify"
)

func TestDiscoveryURLs(t *testing.T) {
	tests := []struct {
		issuer string
		want   []string
	}{
		{"https://idp.example", []string{"https://idp.example/.well-known/openid-configuration", "https://idp.example/.well-known/oauth-authorization-server"}},
		{"https://idp.example/oauth2/default", []string{"https://idp.example/oauth2/default/.well-known/openid-configuration", "https://idp.example/.well-known/oauth-authorization-server/oauth2/default"}},
		{"https://idp.example/tenant/", []string{"https://idp.example/tenant/.well-known/openid-configuration", "https://idp.example/.well-known/oauth-authorization-server/tenant"}},
	}
	for _, tc := range tests {
		got, err := verify.DiscoveryURLs(tc.issuer)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, tc.issuer)
	}
	for _, bad := range []string{"internal-services", "https://idp.example/?x=1", "https://idp.example/#f", ""} {
		_, err := verify.DiscoveryURLs(bad)
		assert.Error(t, err, bad)
	}
}

func TestDiscovery(t *testing.T) {
	key := newTestKey(t, "RS256", "disc")
	tests := []struct {
		name, metadataPath, issuerOverride string
		ok                                 bool
	}{
		{"OpenID Connect discovery", "/tenant/.well-known/openid-configuration", "", true},
		{"RFC 8414 fallback", "/.well-known/oauth-authorization-server/tenant", "", true},
		{"metadata naming another issuer is refused", "/tenant/.well-known/openid-configuration", "https://evil.example", false},
		{"no metadata", "/nowhere", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var jwksHits atomic.Int32
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case tc.metadataPath:
					iss := srv.URL + "/tenant"
					if tc.issuerOverride != "" {
						iss = tc.issuerOverride
					}
					_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": srv.URL + "/keys"})
				case "/keys":
					jwksHits.Add(1)
					_, _ = w.Write(jwksOf(t, key))
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			issuer := srv.URL + "/tenant"
			v, err := verify.NewJWT(verify.JWTOptions{
				Name: "d", Issuer: issuer, Audiences: []string{testAudience}, Keys: verify.DiscoveredJWKS(), Now: fixedClock,
				Remote: verify.RemoteOptions{MinRefetchInterval: time.Millisecond, Logger: quietLogger},
			})
			require.NoError(t, err)
			startVerifier(t, v)
			tok := key.mint(t, nil, claims(map[string]any{"iss": issuer}))
			if !tc.ok {
				_, err := check(v, tok)
				requireCode(t, verify.ErrJWKSUnavailable, err)
				assert.Zero(t, jwksHits.Load(), "no JWKS may be fetched without trusted metadata")
				return
			}
			eventually(t, "keys discovered and loaded", v.Ready)
			id, err := check(v, tok)
			require.NoError(t, err)
			assert.Equal(t, "d", id.Verifier)
		})
	}
	t.Run("a non-URL issuer cannot be discovered", func(t *testing.T) {
		_, err := verify.NewJWT(verify.JWTOptions{Name: "d", Issuer: "internal", Audiences: []string{"a"}, Keys: verify.DiscoveredJWKS()})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "issuer:")
	})
}
