package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/internal/stack"
	"github.com/tokengate/tokengate/keys"
)

// env is one running stack with its identity provider.
type env struct {
	stack    *stack.Stack
	issuer   string
	resource string
	keyDirs  map[string]string // alg -> key directory
}

// startEnv serves a JWKS holding an RS256 and an ES256 key from httptest,
// writes a tokengate config that trusts it, and starts the stack.
func startEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{keyDirs: map[string]string{}}
	var jwks struct {
		Keys []json.RawMessage `json:"keys"`
	}
	for _, alg := range []string{"RS256", "ES256"} {
		kd := filepath.Join(dir, alg)
		_, err := keys.Generate(alg, "", kd)
		require.NoError(t, err)
		e.keyDirs[alg] = kd
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		b, err := os.ReadFile(filepath.Join(kd, keys.JWKSFile))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &set))
		jwks.Keys = append(jwks.Keys, set.Keys...)
	}
	jwksDoc, err := json.Marshal(jwks)
	require.NoError(t, err)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwksDoc)
	}))
	t.Cleanup(idp.Close)
	e.issuer = idp.URL

	ports, err := stack.FreePorts()
	require.NoError(t, err)
	e.resource = "http://127.0.0.1:" + itoa(ports.Envoy) + "/mcp"
	cfg := `
log: {level: debug, format: text}
verifiers:
  idp:
    type: jwt
    issuer: ` + e.issuer + `
    jwks_uri: ` + idp.URL + `/jwks.json
routes:
  - name: mcp
    match: {path_prefix: /mcp}
    verifiers: [idp]
    required_scopes: [mcp:read]
    resource: ` + e.resource + `
`
	cfgPath := filepath.Join(dir, "tokengate.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := stack.Start(ctx, stack.Options{
		Tokengate: bins.tokengate, MCPSample: bins.mcpSample, Envoy: bins.envoy,
		Config: cfgPath, Dir: dir, Ports: ports,
	})
	require.NoError(t, err)
	e.stack = s
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.Logs(40))
		}
		s.Stop()
	})
	return e
}

func itoa(i int) string { return strconv.Itoa(i) }

// mint returns a token signed with the env's key for alg.
func (e *env) mint(t *testing.T, alg string, mutate func(*keys.MintOptions)) string {
	t.Helper()
	o := keys.MintOptions{
		KeyFile:  filepath.Join(e.keyDirs[alg], keys.PrivateKeyFile),
		Alg:      alg,
		Issuer:   e.issuer,
		Audience: []string{e.resource},
		Subject:  "alice",
		Scope:    "mcp:read mcp:write",
		TTL:      time.Hour,
	}
	if mutate != nil {
		mutate(&o)
	}
	tok, err := keys.Mint(o)
	require.NoError(t, err)
	return tok
}

// headerTransport adds fixed headers to every request.
type headerTransport struct{ headers map[string]string }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.headers {
		r.Header.Set(k, v)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (e *env) connect(t *testing.T, headers map[string]string) (*mcp.ClientSession, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	return client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   e.stack.EnvoyURL() + "/mcp",
		HTTPClient: &http.Client{Transport: headerTransport{headers}},
		MaxRetries: -1,
	}, nil)
}

func whoami(t *testing.T, s *mcp.ClientSession) map[string]any {
	t.Helper()
	res, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
	require.NoError(t, err)
	require.False(t, res.IsError)
	out, ok := res.StructuredContent.(map[string]any)
	require.True(t, ok, "whoami structured output is %T", res.StructuredContent)
	return out
}

// post sends an MCP initialize request through Envoy with the given
// headers and returns the response with its body read.
func (e *env) post(t *testing.T, path string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`
	req, err := http.NewRequest(http.MethodPost, e.stack.EnvoyURL()+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func TestThroughEnvoy(t *testing.T) {
	e := startEnv(t)
	metadataURL := strings.Replace(e.resource, "/mcp", "/.well-known/oauth-protected-resource/mcp", 1)

	t.Run("valid token lists tools and whoami shows the identity", func(t *testing.T) {
		for _, alg := range []string{"RS256", "ES256"} {
			t.Run(alg, func(t *testing.T) {
				s, err := e.connect(t, map[string]string{"Authorization": "Bearer " + e.mint(t, alg, nil)})
				require.NoError(t, err)
				defer s.Close()
				tools, err := s.ListTools(context.Background(), nil)
				require.NoError(t, err)
				var names []string
				for _, tool := range tools.Tools {
					names = append(names, tool.Name)
				}
				assert.ElementsMatch(t, []string{"echo", "whoami"}, names)
				who := whoami(t, s)
				assert.Equal(t, "alice", who["x-auth-sub"])
				assert.Equal(t, "mcp:read mcp:write", who["x-auth-scopes"])
				assert.Equal(t, "idp", who["x-auth-verifier"])
				assert.Equal(t, e.issuer, who["x-auth-iss"])
				assert.Equal(t, false, who["authorization_present"], "Authorization must not reach the upstream")
			})
		}
	})

	t.Run("client-sent identity headers never reach the upstream", func(t *testing.T) {
		s, err := e.connect(t, map[string]string{
			"Authorization":    "Bearer " + e.mint(t, "RS256", nil),
			"X-Auth-Sub":       "mallory",
			"X-Auth-Client-Id": "evil-client",
			"X-AUTH-SCOPES":    "admin",
		})
		require.NoError(t, err)
		defer s.Close()
		who := whoami(t, s)
		assert.Equal(t, "alice", who["x-auth-sub"])
		assert.Equal(t, "mcp:read mcp:write", who["x-auth-scopes"])
		assert.NotContains(t, who, "x-auth-client-id", "token has no client_id, so the spoofed one must be stripped")
	})

	t.Run("no token is 401 with the resource metadata challenge", func(t *testing.T) {
		resp, body := e.post(t, "/mcp", nil)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Equal(t, `Bearer resource_metadata="`+metadataURL+`"`, resp.Header.Get("WWW-Authenticate"))
		assert.JSONEq(t, `{"error":"invalid_request","error_description":"missing bearer token"}`, body)

		_, err := e.connect(t, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "Unauthorized")
	})

	t.Run("token without the scope is 403 insufficient_scope", func(t *testing.T) {
		tok := e.mint(t, "ES256", func(o *keys.MintOptions) { o.Scope = "mcp:write" })
		resp, body := e.post(t, "/mcp", map[string]string{"Authorization": "Bearer " + tok})
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		assert.Equal(t, `Bearer error="insufficient_scope", error_description="scope_insufficient", scope="mcp:read", resource_metadata="`+metadataURL+`"`,
			resp.Header.Get("WWW-Authenticate"))
		assert.JSONEq(t, `{"error":"insufficient_scope","error_description":"scope_insufficient"}`, body)
	})

	t.Run("expired token is 401 invalid_token", func(t *testing.T) {
		tok := e.mint(t, "RS256", func(o *keys.MintOptions) { o.Now = time.Now().Add(-3 * time.Hour) })
		resp, body := e.post(t, "/mcp", map[string]string{"Authorization": "Bearer " + tok})
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Equal(t, `Bearer error="invalid_token", error_description="token_expired", resource_metadata="`+metadataURL+`"`,
			resp.Header.Get("WWW-Authenticate"))
		assert.JSONEq(t, `{"error":"invalid_token","error_description":"token_expired"}`, body)
		assert.NotContains(t, body, tok)
	})

	t.Run("wrong audience is 401 audience_mismatch", func(t *testing.T) {
		tok := e.mint(t, "RS256", func(o *keys.MintOptions) { o.Audience = []string{"https://elsewhere.example/mcp"} })
		resp, body := e.post(t, "/mcp", map[string]string{"Authorization": "Bearer " + tok})
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.JSONEq(t, `{"error":"invalid_token","error_description":"audience_mismatch"}`, body)
	})

	t.Run("no route is 403 access_denied", func(t *testing.T) {
		resp, body := e.post(t, "/other", map[string]string{"Authorization": "Bearer " + e.mint(t, "RS256", nil)})
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		assert.JSONEq(t, `{"error":"access_denied","error_description":"no route"}`, body)
	})

	t.Run("protected resource metadata is answered through Envoy", func(t *testing.T) {
		resp, err := http.Get(metadataURL)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		assert.JSONEq(t, `{"resource":"`+e.resource+`","authorization_servers":["`+e.issuer+`"],"scopes_supported":["mcp:read"],"bearer_methods_supported":["header"]}`, string(b))
	})
}
