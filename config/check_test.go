package config_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/config"
)

// TestCheck: Check reports what Load reports, and hands back the parts that
// validated: a verifier with a problem is left out, a route with one stands
// in as an empty anonymous route so that the others keep their index.
func TestCheck(t *testing.T) {
	path := writeConfig(t, `
verifiers:
  good: {type: jwt, issuer: https://idp.example, jwks_uri: https://idp.example/keys, audiences: [api]}
  bad: {type: jwt, issuer: https://idp.example, jwks_uri: http://idp.example/keys, audiences: [api]}
  typo: {type: jwt, issuer: https://idp.example, jwks_url: https://idp.example/keys, audiences: [api]}
routes:
  - {name: first, match: {path_prefix: /a}, verifiers: [good, nope]}
  - {name: second, match: {path_prefix: /b}, verifiers: [good, bad]}
`)
	_, loadErr := config.Load(path, nil)
	cfg, probs, err := config.Check(path, nil)
	require.NoError(t, err)
	require.Equal(t, problemLines(t, loadErr), problemLines(t, &config.Error{Problems: probs}), "the same problems as Load")

	require.NotNil(t, cfg)
	assert.Equal(t, []string{"good"}, keys(cfg.Verifiers))
	require.Len(t, cfg.Routes, 2)
	assert.Equal(t, config.Route{Name: "first", Match: config.Match{PathPrefix: "/"}, AllowAnonymous: true}, cfg.Routes[0])
	assert.Equal(t, []string{"good", "bad"}, cfg.Routes[1].Verifiers, "a route without a problem is kept whole")

	t.Run("a valid file comes back whole", func(t *testing.T) {
		path := writeConfig(t, `
verifiers:
  good: {type: jwt, issuer: https://idp.example, jwks_uri: https://idp.example/keys, audiences: [api]}
routes:
  - {name: first, match: {path_prefix: /a}, verifiers: [good]}
`)
		want, err := config.Load(path, nil)
		require.NoError(t, err)
		cfg, probs, err := config.Check(path, nil)
		require.NoError(t, err)
		assert.Empty(t, probs)
		assert.Equal(t, want, cfg)
	})
	t.Run("an unreadable file is an error", func(t *testing.T) {
		_, _, err := config.Check(path+".missing", nil)
		var cerr *config.Error
		require.ErrorAs(t, err, &cerr)
	})
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
