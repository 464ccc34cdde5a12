package extauthz

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/authz"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/keys"
)

// TestMetadataResourceName checks that a route's resource_name appears in
// its RFC 9728 document, both as authz.Policy.Metadata serves it on the HTTP
// port and as Check answers it through Envoy, and is absent when unset.
func TestMetadataResourceName(t *testing.T) {
	dir := t.TempDir()
	_, err := keys.Generate("ES256", "k", dir)
	require.NoError(t, err)
	path := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
verifiers:
  k: {type: jwt, issuer: https://issuer.test, public_key_file: `+filepath.Join(dir, keys.PublicKeyFile)+`}
routes:
  - {name: named, match: {path_prefix: /mcp}, verifiers: [k], resource: https://mcp.example.com/mcp, resource_name: "MCP tools (ACME)", required_scopes: [mcp:read]}
  - {name: unnamed, match: {path_prefix: /api}, verifiers: [k], resource: https://mcp.example.com/api}
`), 0o600))
	cfg, err := config.Load(path, nil)
	require.NoError(t, err)
	p, err := authz.Build(cfg, authz.BuildOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	svc := newService(p, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)

	tests := []struct {
		name     string
		path     string
		want     string
		wantName bool
	}{
		{"resource_name set", authz.WellKnownPRM + "/mcp", `{
			"resource": "https://mcp.example.com/mcp",
			"resource_name": "MCP tools (ACME)",
			"authorization_servers": ["https://issuer.test"],
			"scopes_supported": ["mcp:read"],
			"bearer_methods_supported": ["header"], "dpop_signing_alg_values_supported": ["ES256","ES384","EdDSA","RS256","PS256"]}`, true},
		{"resource_name unset", authz.WellKnownPRM + "/api", `{
			"resource": "https://mcp.example.com/api",
			"authorization_servers": ["https://issuer.test"],
			"scopes_supported": [],
			"bearer_methods_supported": ["header"], "dpop_signing_alg_values_supported": ["ES256","ES384","EdDSA","RS256","PS256"]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, ok := p.Metadata(tt.path)
			require.True(t, ok)
			assert.JSONEq(t, tt.want, string(doc))

			resp, err := svc.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
				Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
					Method: "GET", Path: tt.path, Host: "mcp.example.com",
				}},
			}})
			require.NoError(t, err)
			require.Equal(t, 200, int(resp.GetDeniedResponse().GetStatus().GetCode()), "answered by tokengate")
			var got map[string]any
			require.NoError(t, json.Unmarshal([]byte(resp.GetDeniedResponse().GetBody()), &got))
			_, has := got["resource_name"]
			assert.Equal(t, tt.wantName, has)
			assert.JSONEq(t, tt.want, resp.GetDeniedResponse().GetBody())
		})
	}
}
