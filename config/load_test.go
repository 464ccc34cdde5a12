package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/tokengate/tokengate/config"
)

// writeConfig writes body as a YAML file in a fresh temporary directory.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokengate.yaml")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

// problemLines returns the problems of a *config.Error as "path: msg" lines.
func problemLines(t *testing.T, err error) []string {
	t.Helper()
	var cerr *config.Error
	require.ErrorAs(t, err, &cerr)
	lines := make([]string, len(cerr.Problems))
	for i, p := range cerr.Problems {
		lines[i] = p.String()
	}
	return lines
}

// wantLines reads the "# want: ..." comment lines at the top of a fixture.
func wantLines(t *testing.T, data []byte) []string {
	t.Helper()
	var want []string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		if w, ok := strings.CutPrefix(line, "# want: "); ok {
			want = append(want, w)
		}
	}
	return want
}

// TestLoadBad loads one file per validation rule and compares the complete
// list of problem lines with the file's "# want:" comments.
func TestLoadBad(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			want := wantLines(t, data)
			require.NotEmpty(t, want, "fixture has no # want: line")

			cfg, err := config.Load(path, nil)
			require.Error(t, err)
			assert.Nil(t, cfg)
			assert.Equal(t, want, problemLines(t, err))
			// The Error's text is the same lines, one per problem.
			assert.Equal(t, strings.Join(want, "\n"), err.Error())
		})
	}
}

const goodConfig = `
verifiers:
  okta:
    type: jwt
    issuer: https://idp.example/oauth2/default
    jwks_uri: https://idp.example/oauth2/default/v1/keys
    audiences: [api://mcp]
  internal:
    type: jwt
    issuer: internal-services
    hmac_secret_env: INTERNAL_HMAC_SECRET
    algorithms: [HS256]
  local:
    type: jwt
    issuer: http://127.0.0.1:8080
    jwks_uri: http://127.0.0.1:8080/keys
  discovered:
    type: jwt
    issuer: https://login.example/tenant
    jwks_refresh: 5m
routes:
  - name: mcp
    match:
      hosts: ["mcp.example.com", "*.internal"]
      path_prefix: /mcp
      methods: [GET, POST, DELETE]
    verifiers: [okta, internal, local]
    required_scopes: [mcp:read]
    resource: https://mcp.example.com/mcp
    claim_headers: {x-user-email: email}
  - name: health
    match: {path_exact: /healthz}
    allow_anonymous: true
`

func TestLoadGoodFillsDefaults(t *testing.T) {
	cfg, err := config.Load(writeConfig(t, goodConfig), nil)
	require.NoError(t, err)

	assert.Equal(t, ":9191", cfg.Server.GRPCListen)
	assert.Equal(t, ":9192", cfg.Server.HTTPListen)
	assert.Equal(t, 60*time.Second, cfg.Server.ClockSkew.D())
	assert.Equal(t, config.DefaultTokenCacheSize, cfg.Server.TokenCache())
	assert.False(t, cfg.Server.Pprof, "pprof is opt-in")
	assert.Equal(t, "info", cfg.Log.Level)
	assert.Equal(t, "json", cfg.Log.Format)

	okta := cfg.Verifiers["okta"]
	assert.Equal(t, 15*time.Minute, okta.JWKSRefresh.D())
	assert.Equal(t, 10*time.Second, okta.JWKSMinRefetchInterval.D())
	assert.Equal(t, []string{"api://mcp"}, okta.Audiences)
	assert.Equal(t, 15*time.Minute, cfg.Verifiers["local"].JWKSRefresh.D(), "http on a loopback host is allowed")
	discovered := cfg.Verifiers["discovered"]
	assert.Empty(t, discovered.JWKSURI, "jwks_uri is discovered from the issuer")
	assert.Equal(t, 5*time.Minute, discovered.JWKSRefresh.D(), "a set value is kept")
	assert.Equal(t, 10*time.Second, discovered.JWKSMinRefetchInterval.D())
	internal := cfg.Verifiers["internal"]
	assert.Zero(t, internal.JWKSRefresh, "no refresh for a shared secret")

	require.Len(t, cfg.Routes, 2)
	assert.Equal(t, []string{"GET", "POST", "DELETE"}, cfg.Routes[0].Match.Methods)
	assert.Equal(t, map[string]string{"x-user-email": "email"}, cfg.Routes[0].ClaimHeaders)
	assert.False(t, cfg.Routes[0].ForwardAuthorization)
	assert.True(t, cfg.Routes[1].AllowAnonymous)
	assert.Empty(t, cfg.Validate(), "a loaded config validates")
}

// TestLoadEnvironment checks that TOKENGATE_* variables beat the file, and
// that the variables without "__" are not configuration keys.
func TestLoadEnvironment(t *testing.T) {
	path := writeConfig(t, goodConfig)
	tests := []struct {
		name    string
		environ []string
		check   func(t *testing.T, cfg *config.Config)
	}{
		{
			name:    "listen address",
			environ: []string{"TOKENGATE_SERVER__GRPC_LISTEN=:7000"},
			check: func(t *testing.T, cfg *config.Config) {
				assert.Equal(t, ":7000", cfg.Server.GRPCListen)
				assert.Equal(t, ":9192", cfg.Server.HTTPListen)
			},
		},
		{
			name:    "verifier issuer",
			environ: []string{"TOKENGATE_VERIFIERS__OKTA__ISSUER=https://other.example"},
			check: func(t *testing.T, cfg *config.Config) {
				assert.Equal(t, "https://other.example", cfg.Verifiers["okta"].Issuer)
				assert.Equal(t, "https://idp.example/oauth2/default/v1/keys", cfg.Verifiers["okta"].JWKSURI)
			},
		},
		{
			name:    "comma list into audiences",
			environ: []string{"TOKENGATE_VERIFIERS__OKTA__AUDIENCES=api://a,api://b"},
			check: func(t *testing.T, cfg *config.Config) {
				assert.Equal(t, []string{"api://a", "api://b"}, cfg.Verifiers["okta"].Audiences)
			},
		},
		{
			name:    "duration",
			environ: []string{"TOKENGATE_SERVER__CLOCK_SKEW=5s"},
			check: func(t *testing.T, cfg *config.Config) {
				assert.Equal(t, 5*time.Second, cfg.Server.ClockSkew.D())
			},
		},
		{
			name:    "token cache disabled: 0 is kept, not defaulted",
			environ: []string{"TOKENGATE_SERVER__TOKEN_CACHE_SIZE=0", "TOKENGATE_SERVER__PPROF=true"},
			check: func(t *testing.T, cfg *config.Config) {
				assert.Equal(t, 0, cfg.Server.TokenCache())
				assert.True(t, cfg.Server.Pprof)
			},
		},
		{
			name:    "secret",
			environ: []string{"TOKENGATE_VERIFIERS__INTERNAL__HMAC_SECRET_ENV=OTHER_SECRET"},
			check: func(t *testing.T, cfg *config.Config) {
				assert.Equal(t, "OTHER_SECRET", cfg.Verifiers["internal"].HMACSecretEnv)
			},
		},
		{
			name:    "one field of a listed route keeps the other routes",
			environ: []string{"TOKENGATE_ROUTES__0__RESOURCE=https://other.example/mcp"},
			check: func(t *testing.T, cfg *config.Config) {
				require.Len(t, cfg.Routes, 2)
				assert.Equal(t, "https://other.example/mcp", cfg.Routes[0].Resource)
				assert.Equal(t, []string{"okta", "internal", "local"}, cfg.Routes[0].Verifiers)
				assert.Equal(t, "/mcp", cfg.Routes[0].Match.PathPrefix)
				assert.Equal(t, "health", cfg.Routes[1].Name)
			},
		},
		{
			name:    "one entry of a string list",
			environ: []string{"TOKENGATE_ROUTES__0__MATCH__METHODS__1=PUT"},
			check: func(t *testing.T, cfg *config.Config) {
				assert.Equal(t, []string{"GET", "PUT", "DELETE"}, cfg.Routes[0].Match.Methods)
			},
		},
		{
			name: "index one past the end appends a route",
			environ: []string{
				"TOKENGATE_ROUTES__2__NAME=extra",
				"TOKENGATE_ROUTES__2__MATCH__PATH_PREFIX=/extra",
				"TOKENGATE_ROUTES__2__ALLOW_ANONYMOUS=true",
			},
			check: func(t *testing.T, cfg *config.Config) {
				require.Len(t, cfg.Routes, 3)
				assert.Equal(t, "extra", cfg.Routes[2].Name)
				assert.Equal(t, "/extra", cfg.Routes[2].Match.PathPrefix)
				assert.True(t, cfg.Routes[2].AllowAnonymous)
			},
		},
		{
			name: "unrelated and quick-start variables are ignored",
			environ: []string{
				"HOME=/root", "TOKENGATE_CONFIG=/nowhere.yaml", "TOKENGATE_JWT_ISSUER=https://x.example",
				"OTHER_SERVER__GRPC_LISTEN=:1",
			},
			check: func(t *testing.T, cfg *config.Config) {
				assert.Equal(t, ":9191", cfg.Server.GRPCListen)
				assert.Equal(t, "https://idp.example/oauth2/default", cfg.Verifiers["okta"].Issuer)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(path, tt.environ)
			require.NoError(t, err)
			tt.check(t, cfg)
		})
	}
}

func TestLoadEnvironmentProblems(t *testing.T) {
	path := writeConfig(t, goodConfig)
	tests := []struct {
		name    string
		environ []string
		want    []string
	}{
		{
			name:    "bad duration from the environment",
			environ: []string{"TOKENGATE_SERVER__CLOCK_SKEW=soon"},
			want:    []string{`server.clock_skew: must be a duration like 60s or 15m, not "soon"`},
		},
		{
			name:    "unknown key from the environment",
			environ: []string{"TOKENGATE_SERVER__GRPC_LISTN=:7000"},
			want:    []string{"server.grpc_listn: unknown key"},
		},
		{
			name:    "list index past the end",
			environ: []string{"TOKENGATE_ROUTES__5__NAME=x"},
			want:    []string{"routes[5]: list index out of range: the list has 2 entries, so the next one is routes[2]"},
		},
		{
			name:    "http jwks_uri from the environment",
			environ: []string{"TOKENGATE_VERIFIERS__OKTA__JWKS_URI=http://idp.example/keys"},
			want: []string{"verifiers.okta.jwks_uri: must be an https URL " +
				"(http is allowed only on loopback hosts or with allow_insecure_http: true)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(path, tt.environ)
			assert.Equal(t, tt.want, problemLines(t, err))
		})
	}
}

// TestLoadEnvironmentOnly builds a whole configuration from the environment.
func TestLoadEnvironmentOnly(t *testing.T) {
	cfg, err := config.Load("", []string{
		"TOKENGATE_VERIFIERS__OKTA__TYPE=jwt",
		"TOKENGATE_VERIFIERS__OKTA__ISSUER=https://idp.example",
		"TOKENGATE_VERIFIERS__OKTA__JWKS_URI=https://idp.example/keys",
		"TOKENGATE_VERIFIERS__OKTA__AUDIENCES=api://mcp",
		"TOKENGATE_ROUTES__0__NAME=mcp",
		"TOKENGATE_ROUTES__0__MATCH__PATH_PREFIX=/",
		"TOKENGATE_ROUTES__0__VERIFIERS=okta",
	})
	require.NoError(t, err)
	assert.Equal(t, "https://idp.example", cfg.Verifiers["okta"].Issuer)
	require.Len(t, cfg.Routes, 1)
	assert.Equal(t, "mcp", cfg.Routes[0].Name)
	assert.Equal(t, "/", cfg.Routes[0].Match.PathPrefix)
	assert.Equal(t, []string{"okta"}, cfg.Routes[0].Verifiers)
}

func TestLoadNoConfig(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
	}{
		{"empty environment", nil},
		{"only unrelated variables", []string{"HOME=/root", "PATH=/bin"}},
		{"only variables that are not keys", []string{"TOKENGATE_CONFIG=", "TOKENGATE_LOG=debug"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load("", tt.environ)
			assert.Nil(t, cfg)
			assert.ErrorIs(t, err, config.ErrNoConfig)
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := config.Load(path, nil)
	lines := problemLines(t, err)
	require.Len(t, lines, 1)
	assert.Contains(t, lines[0], path, "the message names the file")
	assert.NotErrorIs(t, err, config.ErrNoConfig)
}

// TestMarshalRedactsSecrets checks that printing a configuration (as
// "config check" does) never shows a secret or a static token.
func TestMarshalRedactsSecrets(t *testing.T) {
	const (
		hmac        = "hmac-secret-value-0123456789abcdefghij"
		client      = "client-secret-value-0123456789"
		staticToken = "dev-alice-token-value"
	)
	path := writeConfig(t, `
verifiers:
  internal:
    type: jwt
    issuer: internal-services
    hmac_secret: `+hmac+`
    audiences: [api://mcp]
  legacy:
    type: introspection
    introspection_url: https://idp.example/introspect
    client_id: tokengate
    client_secret: `+client+`
  dev:
    type: static
    tokens:
      `+staticToken+`: {sub: alice, scopes: [mcp:read]}
routes:
  - name: mcp
    match: {path_prefix: /mcp}
    verifiers: [internal, legacy, dev]
    resource: https://mcp.example.com/mcp
`)
	cfg, err := config.Load(path, []string{"TOKENGATE_VERIFIERS__LEGACY__CLIENT_SECRET=" + client + "-env"})
	require.NoError(t, err)
	require.Equal(t, config.Secret(client+"-env"), cfg.Verifiers["legacy"].ClientSecret, "the environment value is used")

	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	text := string(out)
	for _, secret := range []string{hmac, client, staticToken} {
		assert.NotContains(t, text, secret)
	}

	var printed struct {
		Verifiers map[string]map[string]any `yaml:"verifiers"`
	}
	require.NoError(t, yaml.Unmarshal(out, &printed))
	assert.Equal(t, config.Redacted, printed.Verifiers["internal"]["hmac_secret"])
	assert.Equal(t, config.Redacted, printed.Verifiers["legacy"]["client_secret"])
	tokens, ok := printed.Verifiers["dev"]["tokens"].(map[string]any)
	require.True(t, ok, "tokens printed as a map")
	keys := make([]string, 0, len(tokens))
	for k := range tokens {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	require.Len(t, keys, 1)
	assert.True(t, strings.HasPrefix(keys[0], config.Redacted), "token key %q is redacted", keys[0])
	assert.Equal(t, map[string]any{"sub": "alice", "scopes": []any{"mcp:read"}}, tokens[keys[0]])

	// The Secret type never prints itself either.
	assert.Equal(t, config.Redacted, cfg.Verifiers["internal"].HMACSecret.String())
}

// TestLoadErrorsHideSecrets checks that problems found in secret-bearing
// keys never echo the secret or a static token value.
func TestLoadErrorsHideSecrets(t *testing.T) {
	const staticToken = "dev-alice-token-value"
	tests := []struct {
		name string
		body string
		want []string
	}{
		{
			name: "typo inside a static token entry",
			body: `
verifiers:
  dev:
    type: static
    tokens:
      ` + staticToken + `: {sub: alice, scope: [mcp:read]}
routes:
  - name: mcp
    match: {path_prefix: /mcp}
    verifiers: [dev]
`,
			want: []string{"verifiers.dev.tokens." + config.Redacted + ".scope: unknown key"},
		},
		{
			name: "static token entry of the wrong shape",
			body: `
verifiers:
  dev:
    type: static
    tokens:
      ` + staticToken + `: alice
routes:
  - name: mcp
    match: {path_prefix: /mcp}
    verifiers: [dev]
`,
			want: []string{"verifiers.dev.tokens." + config.Redacted + ": expected a map or struct, got \"string\""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(writeConfig(t, tt.body), nil)
			lines := problemLines(t, err)
			assert.Equal(t, tt.want, lines)
			assert.NotContains(t, err.Error(), staticToken)
		})
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    config.Problem
		want string
	}{
		{config.Problem{Path: "server.grpc_listen", Msg: "must be host:port"}, "server.grpc_listen: must be host:port"},
		{config.Problem{Msg: "no path"}, "no path"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.p.String())
		assert.Equal(t, tt.want, tt.p.Error())
	}
	err := error(&config.Error{Problems: []config.Problem{{Path: "a", Msg: "x"}, {Path: "b", Msg: "y"}}})
	assert.Equal(t, "a: x\nb: y", err.Error())
	assert.False(t, errors.Is(err, config.ErrNoConfig))
}
