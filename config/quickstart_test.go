package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuickStart(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		check   func(t *testing.T, c *Config)
		want    []string // problem lines, if the load must fail
		exact   bool     // want is the whole list
	}{
		{
			name: "JWKS verifier and a catch-all route",
			environ: []string{
				"TOKENGATE_JWT_JWKS_URI=https://idp.example/keys", "TOKENGATE_JWT_ISSUER=https://idp.example",
				"TOKENGATE_JWT_AUDIENCE=api://mcp,api://other", "TOKENGATE_JWT_ALGORITHM=RS256",
				"TOKENGATE_REQUIRED_SCOPES=mcp:read mcp:write", "TOKENGATE_RESOURCE=https://mcp.example.com/mcp",
			},
			check: func(t *testing.T, c *Config) {
				v := c.Verifiers[QuickStartJWT]
				assert.Equal(t, TypeJWT, v.Type)
				assert.Equal(t, "https://idp.example/keys", v.JWKSURI)
				assert.Equal(t, "https://idp.example", v.Issuer)
				assert.Equal(t, []string{"api://mcp", "api://other"}, v.Audiences)
				assert.Equal(t, []string{"RS256"}, v.Algorithms)
				require.Len(t, c.Routes, 1)
				r := c.Routes[0]
				assert.Equal(t, QuickStartRoute, r.Name)
				assert.Equal(t, "/", r.Match.PathPrefix)
				assert.Equal(t, []string{QuickStartJWT}, r.Verifiers)
				assert.Equal(t, []string{"mcp:read", "mcp:write"}, r.RequiredScopes)
				assert.Equal(t, "https://mcp.example.com/mcp", r.Resource)
				assert.Equal(t, DefaultGRPCListen, c.Server.GRPCListen)
			},
		},
		{
			name: "FastMCP names work unchanged",
			environ: []string{
				"FASTMCP_SERVER_AUTH_JWT_JWKS_URI=https://idp.example/keys", "FASTMCP_SERVER_AUTH_JWT_ISSUER=https://idp.example",
				"FASTMCP_SERVER_AUTH_JWT_AUDIENCE=api://mcp", "FASTMCP_SERVER_AUTH_JWT_REQUIRED_SCOPES=read,write",
			},
			check: func(t *testing.T, c *Config) {
				assert.Equal(t, "https://idp.example/keys", c.Verifiers[QuickStartJWT].JWKSURI)
				assert.Equal(t, []string{"read", "write"}, c.Routes[0].RequiredScopes)
			},
		},
		{
			name: "TOKENGATE_ names win over FastMCP's",
			environ: []string{
				"FASTMCP_SERVER_AUTH_JWT_ISSUER=https://fastmcp.example", "TOKENGATE_JWT_ISSUER=https://tokengate.example",
				"TOKENGATE_JWT_HMAC_SECRET=0123456789abcdef0123456789abcdef", "TOKENGATE_JWT_AUDIENCE=api",
			},
			check: func(t *testing.T, c *Config) {
				assert.Equal(t, "https://tokengate.example", c.Verifiers[QuickStartJWT].Issuer)
				assert.Equal(t, Secret("0123456789abcdef0123456789abcdef"), c.Verifiers[QuickStartJWT].HMACSecret)
			},
		},
		{
			name: "introspection quick start",
			environ: []string{
				"FASTMCP_SERVER_AUTH_INTROSPECTION_URL=https://idp.example/introspect",
				"FASTMCP_SERVER_AUTH_INTROSPECTION_CLIENT_ID=gw", "FASTMCP_SERVER_AUTH_INTROSPECTION_CLIENT_SECRET=s",
			},
			check: func(t *testing.T, c *Config) {
				v := c.Verifiers[QuickStartIntrospection]
				assert.Equal(t, TypeIntrospection, v.Type)
				assert.Equal(t, "gw", v.ClientID)
				assert.Equal(t, Secret("s"), v.ClientSecret)
				assert.Equal(t, []string{QuickStartIntrospection}, c.Routes[0].Verifiers)
			},
		},
		{
			name: "environment overrides apply on top of the quick start",
			environ: []string{
				"TOKENGATE_JWT_PUBLIC_KEY=-----BEGIN PUBLIC KEY-----", "TOKENGATE_JWT_ISSUER=iss", "TOKENGATE_JWT_AUDIENCE=aud",
				"TOKENGATE_SERVER__GRPC_LISTEN=127.0.0.1:7000",
			},
			check: func(t *testing.T, c *Config) {
				assert.Equal(t, "127.0.0.1:7000", c.Server.GRPCListen)
				assert.Equal(t, "-----BEGIN PUBLIC KEY-----", c.Verifiers[QuickStartJWT].PublicKey)
			},
		},
		{
			name:    "issuer is required",
			environ: []string{"TOKENGATE_JWT_JWKS_URI=https://idp.example/keys", "TOKENGATE_JWT_AUDIENCE=api"},
			want:    []string{"TOKENGATE_JWT_ISSUER: is required with a JWT key source"},
		},
		{
			name:    "an audience or resource is required",
			environ: []string{"FASTMCP_SERVER_AUTH_JWT_JWKS_URI=https://idp.example/keys", "FASTMCP_SERVER_AUTH_JWT_ISSUER=https://idp.example"},
			want:    []string{"TOKENGATE_JWT_AUDIENCE: TOKENGATE_JWT_AUDIENCE or TOKENGATE_RESOURCE is required (tokens must be bound to an audience)"},
		},
		{
			name:    "validation problems name the variable, once",
			environ: []string{"TOKENGATE_JWT_JWKS_URI=http://idp.example/keys"},
			want: []string{
				"TOKENGATE_JWT_ISSUER: is required with a JWT key source",
				"TOKENGATE_JWT_AUDIENCE: TOKENGATE_JWT_AUDIENCE or TOKENGATE_RESOURCE is required (tokens must be bound to an audience)",
				"TOKENGATE_JWT_JWKS_URI: must be an https URL (http is allowed only on loopback hosts or with allow_insecure_http: true)",
			},
			exact: true,
		},
		{
			name:    "introspection needs client credentials",
			environ: []string{"TOKENGATE_INTROSPECTION_URL=https://idp.example/introspect"},
			want: []string{
				"TOKENGATE_INTROSPECTION_CLIENT_ID: is required with TOKENGATE_INTROSPECTION_URL",
				"TOKENGATE_INTROSPECTION_CLIENT_SECRET: is required with TOKENGATE_INTROSPECTION_URL",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load("", tc.environ)
			if tc.want != nil {
				var cerr *Error
				require.ErrorAs(t, err, &cerr)
				var got []string
				for _, p := range cerr.Problems {
					got = append(got, p.String())
				}
				if tc.exact {
					assert.Equal(t, tc.want, got)
				} else {
					assert.Subset(t, got, tc.want)
				}
				return
			}
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
	t.Run("a file turns the quick start off", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "c.yaml")
		require.NoError(t, os.WriteFile(path, []byte(`
verifiers:
  file: {type: static, tokens: {t1: {sub: a}}}
routes:
  - {name: r, match: {path_prefix: /}, verifiers: [file]}
`), 0o600))
		c, err := Load(path, []string{"TOKENGATE_JWT_JWKS_URI=https://idp.example/keys", "TOKENGATE_JWT_ISSUER=x"})
		require.NoError(t, err)
		assert.NotContains(t, c.Verifiers, QuickStartJWT)
		assert.Equal(t, "r", c.Routes[0].Name)
	})
}

func TestClockSkewZeroIsKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	cfg := `
verifiers:
  s: {type: static, tokens: {t1: {sub: a}}}
routes:
  - {name: r, match: {path_prefix: /}, verifiers: [s]}
`
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	c, err := Load(path, nil)
	require.NoError(t, err)
	assert.Equal(t, DefaultClockSkew, c.Server.ClockSkew.D(), "unset: the default")
	require.NoError(t, os.WriteFile(path, []byte("server: {clock_skew: 0s}\n"+cfg), 0o600))
	c, err = Load(path, nil)
	require.NoError(t, err)
	assert.Zero(t, c.Server.ClockSkew.D(), "an explicit 0s stays 0")
}
