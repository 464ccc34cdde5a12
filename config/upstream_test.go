package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/tokengate/tokengate/config"
)

const upstreamGood = `
assertion:
  issuer: https://tokengate.example
  keys:
    - {key_file: /etc/tokengate/new.pem, kid: tg-2}
    - {key_file: /etc/tokengate/old.pem, kid: tg-1}
verifiers:
  okta:
    type: jwt
    issuer: https://idp.example
    audiences: [api://mcp]
routes:
  - name: plain
    match: {path_prefix: /plain}
    verifiers: [okta]
  - name: alias
    match: {path_prefix: /alias}
    verifiers: [okta]
    forward_authorization: true
  - name: forward
    match: {path_prefix: /forward}
    verifiers: [okta]
    upstream_token: {mode: forward}
  - name: signed
    match: {path_prefix: /signed}
    verifiers: [okta]
    upstream_token: {mode: assertion, audience: https://backend.internal}
  - name: exchanged
    match: {path_prefix: /exchanged}
    verifiers: [okta]
    upstream_token:
      mode: exchange
      audience: backend
      client_id: tokengate
      client_secret: exchange-secret-value-0123456789
      client_auth: client_secret_post
      scopes: [backend:read]
`

// TestUpstreamTokenDefaults checks the filled modes, the forward alias in
// both directions and the per-mode defaults.
func TestUpstreamTokenDefaults(t *testing.T) {
	cfg, err := config.Load(writeConfig(t, upstreamGood), nil)
	require.NoError(t, err)

	modes := map[string]string{}
	forward := map[string]bool{}
	for _, r := range cfg.Routes {
		modes[r.Name] = r.UpstreamToken.Mode
		forward[r.Name] = r.ForwardAuthorization
	}
	assert.Equal(t, map[string]string{"plain": "none", "alias": "forward", "forward": "forward", "signed": "assertion", "exchanged": "exchange"}, modes)
	assert.Equal(t, map[string]bool{"plain": false, "alias": true, "forward": true, "signed": false, "exchanged": false}, forward)

	assert.Equal(t, 5*time.Minute, cfg.Routes[3].UpstreamToken.TTL.D())
	ex := cfg.Routes[4].UpstreamToken
	assert.Equal(t, "post", ex.ClientAuth, "the RFC name is normalized")
	assert.Equal(t, config.DefaultExchangeTimeout, ex.Timeout.D())
	assert.Equal(t, config.DefaultAssertionCacheSize, cfg.Assertion.Cache())
	assert.Equal(t, []config.AssertionKey{{KeyFile: "/etc/tokengate/new.pem", Kid: "tg-2"}, {KeyFile: "/etc/tokengate/old.pem", Kid: "tg-1"}},
		cfg.Assertion.SigningKeys())

	iss, insecure, ok := cfg.ExchangeIssuer(cfg.Routes[4])
	assert.Equal(t, "https://idp.example", iss)
	assert.False(t, insecure)
	assert.True(t, ok)
}

// TestUpstreamTokenWarnings checks that both spellings of passthrough warn,
// each at the key the user wrote.
func TestUpstreamTokenWarnings(t *testing.T) {
	cfg, err := config.Load(writeConfig(t, upstreamGood), nil)
	require.NoError(t, err)
	const msg = "forward passes the client's token to the upstream (token passthrough), " +
		"which the MCP specification forbids; use upstream_token.mode assertion or exchange"
	assert.Equal(t, []config.Problem{
		{Path: "routes[1].forward_authorization", Msg: msg},
		{Path: "routes[2].upstream_token.mode", Msg: msg},
	}, cfg.Warnings())
}

// TestUpstreamTokenSecretRedacted checks that config check's output never
// shows the exchange client secret.
func TestUpstreamTokenSecretRedacted(t *testing.T) {
	cfg, err := config.Load(writeConfig(t, upstreamGood), nil)
	require.NoError(t, err)
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	assert.NotContains(t, string(out), "exchange-secret-value")
	var printed struct {
		Routes []struct {
			UpstreamToken map[string]any `yaml:"upstream_token"`
		} `yaml:"routes"`
		Assertion map[string]any `yaml:"assertion"`
	}
	require.NoError(t, yaml.Unmarshal(out, &printed))
	assert.Equal(t, config.Redacted, printed.Routes[4].UpstreamToken["client_secret"])
	assert.Equal(t, "https://tokengate.example", printed.Assertion["issuer"])
}

// TestUpstreamTokenFromEnvironment checks that the exchange secret can come
// from the environment like any other key.
func TestUpstreamTokenFromEnvironment(t *testing.T) {
	cfg, err := config.Load(writeConfig(t, upstreamGood), []string{"TOKENGATE_ROUTES__4__UPSTREAM_TOKEN__CLIENT_SECRET=from-env"})
	require.NoError(t, err)
	assert.Equal(t, config.Secret("from-env"), cfg.Routes[4].UpstreamToken.ClientSecret)
}

// TestUpstreamModeByHand checks the effective mode of a Config built without
// Load, and that it validates.
func TestUpstreamModeByHand(t *testing.T) {
	tests := []struct {
		route config.Route
		want  string
	}{
		{config.Route{}, config.UpstreamNone},
		{config.Route{ForwardAuthorization: true}, config.UpstreamForward},
		{config.Route{UpstreamToken: config.UpstreamToken{Mode: config.UpstreamExchange}}, config.UpstreamExchange},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.route.UpstreamMode())
	}
	cfg, err := config.Load(writeConfig(t, upstreamGood), nil)
	require.NoError(t, err)
	cfg.Routes[0].UpstreamToken.Mode = ""
	cfg.Routes[1].UpstreamToken.Mode = ""
	assert.Empty(t, cfg.Validate())
	assert.Len(t, cfg.Warnings(), 2)
}
