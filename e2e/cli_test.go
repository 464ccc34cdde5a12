package e2e

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/keys"
)

// runTokengate runs the built tokengate binary and returns its stdout; it
// fails the test on a non-zero exit.
func runTokengate(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bins.tokengate, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "tokengate %s: %s", args[0], stderr.String())
	return stdout.String()
}

// TestCLIKeysThroughEnvoy builds a verifier from keys made by `tokengate
// keys generate` and calls the MCP server through Envoy with a token made
// by `tokengate token mint`.
func TestCLIKeysThroughEnvoy(t *testing.T) {
	const issuer = "https://cli.example"
	var keyDir string
	e := startEnv(t, envOptions{
		verifiers: func(e *env) string {
			keyDir = filepath.Join(e.dir, "cli-keys")
			out := runTokengate(t, "keys", "generate", "--alg", "PS256", "--kid", "cli", "--out", keyDir)
			for _, f := range []string{keys.PrivateKeyFile, keys.PublicKeyFile, keys.JWKSFile} {
				assert.Contains(t, out, filepath.Join(keyDir, f), "generate lists what it wrote")
			}
			return `
  cli:
    type: jwt
    issuer: ` + issuer + `
    public_key_file: ` + filepath.Join(keyDir, keys.PublicKeyFile) + `
    algorithms: [PS256]
`
		},
		routeVerifiers: []string{"cli"},
	})
	info, err := os.Stat(filepath.Join(keyDir, keys.PrivateKeyFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "private.pem mode")

	tok := strings.TrimSpace(runTokengate(t, "token", "mint",
		"--key", filepath.Join(keyDir, keys.PrivateKeyFile), "--alg", "PS256", "--kid", "cli",
		"--iss", issuer, "--aud", e.resource, "--sub", "cli-user", "--scope", "mcp:read mcp:write"))
	require.Equal(t, 2, strings.Count(tok, "."), "one compact JWS")

	who := e.whoamiWith(t, tok)
	assert.Equal(t, map[string]any{
		"x-auth-sub": "cli-user", "x-auth-iss": issuer, "x-auth-scopes": "mcp:read mcp:write", "x-auth-verifier": "cli",
		"authorization_present": false,
	}, who)

	// The same CLI key signing for another issuer is not trusted.
	other := strings.TrimSpace(runTokengate(t, "token", "mint",
		"--key", filepath.Join(keyDir, keys.PrivateKeyFile), "--alg", "PS256", "--kid", "cli",
		"--iss", "https://other.example", "--aud", e.resource, "--sub", "cli-user", "--scope", "mcp:read"))
	resp, body := e.post(t, "/mcp", bearer(other))
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.JSONEq(t, `{"error":"invalid_token","error_description":"issuer_untrusted"}`, body)
}
