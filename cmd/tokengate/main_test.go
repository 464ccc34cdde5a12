package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/keys"
)

func runMain(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	_, err := keys.Generate("RS256", "", filepath.Join(dir, "k"))
	require.NoError(t, err)
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte(`
verifiers:
  partner: {type: jwt, issuer: https://partner.example, public_key_file: `+filepath.Join(dir, "k", keys.PublicKeyFile)+`}
  internal: {type: jwt, issuer: internal, hmac_secret: "0123456789abcdef0123456789abcdef-secret-value", algorithms: [HS256]}
routes:
  - {name: mcp, match: {path_prefix: /mcp}, verifiers: [partner, internal], resource: https://mcp.example.com/mcp}
`), 0o600))
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(`
verifiers:
  okta: {type: jwt, issuer: https://okta.example, jwks_uri: http://okta.example/keys, audiences: [api]}
routes:
  - {name: mcp, match: {path_prefix: /mcp}, verifiers: [okta, nope]}
`), 0o600))
	badKey := filepath.Join(dir, "badkey.yaml")
	require.NoError(t, os.WriteFile(badKey, []byte(`
verifiers:
  partner: {type: jwt, issuer: https://partner.example, public_key_file: `+good+`}
routes:
  - {name: mcp, match: {path_prefix: /mcp}, verifiers: [partner], resource: https://mcp.example.com/mcp}
`), 0o600))
	passthrough := filepath.Join(dir, "passthrough.yaml")
	require.NoError(t, os.WriteFile(passthrough, []byte(`
verifiers:
  partner: {type: jwt, issuer: https://partner.example, public_key_file: `+filepath.Join(dir, "k", keys.PublicKeyFile)+`}
routes:
  - {name: mcp, match: {path_prefix: /mcp}, verifiers: [partner], resource: https://mcp.example.com/mcp, forward_authorization: true}
`), 0o600))
	t.Setenv("TOKENGATE_CONFIG", "")

	tests := []struct {
		name        string
		args        []string
		code        int
		stdout      []string
		stderr      []string
		notInOutput []string
	}{
		{"no args", nil, 2, nil, []string{"Usage:"}, nil},
		{"unknown command", []string{"frobnicate"}, 2, nil, []string{`unknown command "frobnicate"`}, nil},
		{"version", []string{"version"}, 0, []string{"tokengate ", "go1."}, nil, nil},
		{"serve without config", []string{"serve"}, 1, nil, []string{"no configuration", "--config FILE", "TOKENGATE_CONFIG"}, nil},
		{"serve unknown flag", []string{"serve", "--nope"}, 2, nil, nil, nil},
		{"serve invalid config", []string{"serve", "--config", bad}, 1, nil, []string{
			"verifiers.okta.jwks_uri: must be an https URL",
			`routes[0].verifiers[1]: unknown verifier "nope"`,
		}, nil},
		{"check good config redacts secrets", []string{"config", "check", "--config", good}, 0,
			[]string{"hmac_secret: <redacted>", "grpc_listen: :9191", "clock_skew: 1m0s"}, nil,
			[]string{"0123456789abcdef0123456789abcdef-secret-value"}},
		{"check passthrough warns", []string{"config", "check", "--config", passthrough}, 0,
			[]string{"mode: forward"}, []string{"tokengate config check: warning: routes[0].forward_authorization: forward passes the client's token to the upstream (token passthrough)"}, nil},
		{"check bad config", []string{"config", "check", "--config", bad}, 1, nil, []string{"verifiers.okta.jwks_uri:"}, nil},
		{"check unreadable key file is named", []string{"config", "check", "--config", badKey}, 1, nil,
			[]string{"verifiers.partner.public_key_file:"}, nil},
		{"check missing file", []string{"config", "check", "--config", filepath.Join(dir, "missing.yaml")}, 1, nil,
			[]string{"missing.yaml"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runMain(tc.args...)
			assert.Equal(t, tc.code, code, "stderr: %s", stderr)
			for _, s := range tc.stdout {
				assert.Contains(t, stdout, s)
			}
			for _, s := range tc.stderr {
				assert.Contains(t, stderr, s)
			}
			for _, s := range tc.notInOutput {
				assert.False(t, strings.Contains(stdout+stderr, s), "output leaks %q", s)
			}
		})
	}
}
