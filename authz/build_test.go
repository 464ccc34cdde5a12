package authz

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/config"
)

// TestBuildProblems: every build-phase mistake (a file that cannot be
// read, a secret that does not fit, an option a constructor refuses) is
// reported at the configuration key it came from.
func TestBuildProblems(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	require.NoError(t, os.WriteFile(garbage, []byte("not a key"), 0o600))
	env := map[string]string{"SHORT_SECRET": "short"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	jwt := func(mod func(*config.Verifier)) config.Verifier {
		v := config.Verifier{Type: config.TypeJWT, Issuer: "https://idp.example", Audiences: []string{"api"}}
		mod(&v)
		return v
	}
	intro := func(mod func(*config.Verifier)) config.Verifier {
		v := config.Verifier{Type: config.TypeIntrospection, IntrospectionURL: "https://idp.example/introspect",
			ClientID: "tokengate", ClientSecret: "s3cret-value", ClientAuth: "basic"}
		mod(&v)
		return v
	}
	tests := []struct {
		name string
		v    config.Verifier
		want string
	}{
		{"unreadable public key file", jwt(func(v *config.Verifier) { v.PublicKeyFile = missing }),
			"verifiers.x.public_key_file: open " + missing + ": no such file or directory"},
		{"public key file that is no key", jwt(func(v *config.Verifier) { v.PublicKeyFile = garbage }),
			"verifiers.x.public_key_file: "},
		{"inline public key that is no key", jwt(func(v *config.Verifier) { v.PublicKey = "not a key" }),
			"verifiers.x.public_key: "},
		{"unreadable JWKS file", jwt(func(v *config.Verifier) { v.JWKSFile = missing }),
			"verifiers.x.jwks_file: open " + missing},
		{"JWKS file that is no JWKS", jwt(func(v *config.Verifier) { v.JWKSFile = garbage }),
			"verifiers.x.jwks_file: "},
		{"short inline secret", jwt(func(v *config.Verifier) { v.HMACSecret = "short" }),
			"verifiers.x.hmac_secret: 5 bytes is too short for HS256 (minimum 32)"},
		{"short secret from the environment", jwt(func(v *config.Verifier) { v.HMACSecretEnv = "SHORT_SECRET" }),
			"verifiers.x.hmac_secret_env: 5 bytes is too short for HS256 (minimum 32)"},
		{"unset secret variable", jwt(func(v *config.Verifier) { v.HMACSecretEnv = "NOPE" }),
			"verifiers.x.hmac_secret_env: environment variable NOPE is not set"},
		{"unreadable secret file", jwt(func(v *config.Verifier) { v.HMACSecretFile = missing }),
			"verifiers.x.hmac_secret_file: open " + missing},
		{"RSA algorithm with a secret", jwt(func(v *config.Verifier) {
			v.HMACSecret = config.Secret(strings.Repeat("s", 32))
			v.Algorithms = []string{"RS256"}
		}), "verifiers.x.algorithms: RS256 cannot be used with an HMAC secret"},
		{"discovery from a non-URL issuer", jwt(func(v *config.Verifier) { v.Issuer = "internal" }),
			"verifiers.x.issuer: "},
		{"introspection without client id", intro(func(v *config.Verifier) { v.ClientID = "" }),
			"verifiers.x.client_id: is required"},
		{"introspection with an unset secret variable", intro(func(v *config.Verifier) {
			v.ClientSecret, v.ClientSecretEnv = "", "NOPE"
		}), "verifiers.x.client_secret_env: environment variable NOPE is not set"},
		{"static without tokens", config.Verifier{Type: config.TypeStatic},
			"verifiers.x.tokens: at least one token is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{
				Verifiers: map[string]config.Verifier{"x": tc.v},
				Routes:    []config.Route{{Name: "r", Match: config.Match{PathPrefix: "/"}, Verifiers: []string{"x"}, Resource: "https://mcp.example/"}},
			}
			_, err := Build(cfg, BuildOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LookupEnv: lookup})
			var cerr *config.Error
			require.ErrorAs(t, err, &cerr)
			require.Len(t, cerr.Problems, 1, "%v", cerr)
			assert.True(t, strings.HasPrefix(cerr.Problems[0].String(), tc.want), "got %q, want a line starting %q", cerr.Problems[0], tc.want)
			assert.NotContains(t, err.Error(), "s3cret-value")
		})
	}
}
