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
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/internal/envoycfg"
	"github.com/tokengate/tokengate/internal/stack"
	"github.com/tokengate/tokengate/keys"
)

// env is one running stack (mcp-sample, tokengate, Envoy) with its identity
// provider: an httptest server whose JWKS the test can change or take down.
type env struct {
	stack    *stack.Stack
	dir      string
	idp      *httptest.Server
	jwks     atomic.Pointer[[]byte]
	issuer   string
	resource string
	keyDirs  map[string]string // key name -> directory from keys.Generate
	// cfgPath is tokengate's configuration file; extraVerifiers is the
	// YAML envOptions.verifiers returned at start.
	cfgPath        string
	extraVerifiers string
}

// envOptions add to the base configuration.
type envOptions struct {
	// verifiers returns extra YAML under "verifiers:" (entries indented two
	// spaces); it may create keys first. routeVerifiers are the names the
	// mcp route lists after "idp".
	verifiers      func(e *env) string
	routeVerifiers []string
	// mcpRoute is extra YAML for the mcp route (keys indented four
	// spaces), for example claim_headers.
	mcpRoute string
	// routes returns extra routes after the mcp route ("  - name: ...").
	routes func(e *env) string
	// envoyRoutes are Envoy routes tried before its catch-all.
	envoyRoutes []envoycfg.Route
	// idp, if set, answers the IdP's requests other than /jwks.json.
	idp http.Handler
	// topLevel is extra top-level YAML (for example scope_hierarchy).
	topLevel string
	// envoyRequestBody makes Envoy send the request body with each check
	// (with_request_body), for MCP operation rules.
	envoyRequestBody bool
	// mcpSampleArgs are extra mcp-sample flags, given the ports.
	mcpSampleArgs func(stack.Ports) []string
	// envoyTLS and envoyForwardClientCert: see stack.Options.
	envoyTLS               *envoycfg.TLS
	envoyForwardClientCert bool
}

// newKey generates a key named name with keys.Generate.
func (e *env) newKey(t *testing.T, name, alg string) string {
	t.Helper()
	kd := filepath.Join(e.dir, "keys", name)
	_, err := keys.Generate(alg, name, kd)
	require.NoError(t, err)
	e.keyDirs[name] = kd
	return kd
}

// serveJWKS makes the IdP serve the public keys of the named keys.
func (e *env) serveJWKS(t *testing.T, names ...string) {
	t.Helper()
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	for _, n := range names {
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		b, err := os.ReadFile(filepath.Join(e.keyDirs[n], keys.JWKSFile))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &set))
		doc.Keys = append(doc.Keys, set.Keys...)
	}
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	e.jwks.Store(&b)
}

// startEnv serves a JWKS with an RS256 key ("rs") and an ES256 key ("es"),
// writes a tokengate config trusting it as verifier "idp" (plus opts), and
// starts the stack on free loopback ports.
func startEnv(t *testing.T, opts envOptions) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), keyDirs: map[string]string{}}
	e.newKey(t, "rs", "RS256")
	e.newKey(t, "es", "ES256")
	e.serveJWKS(t, "rs", "es")
	e.idp = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks.json" {
			if opts.idp != nil {
				opts.idp.ServeHTTP(w, r)
				return
			}
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*e.jwks.Load())
	}))
	t.Cleanup(e.idp.Close)
	e.issuer = e.idp.URL

	ports, err := stack.FreePorts()
	require.NoError(t, err)
	e.resource = "http://127.0.0.1:" + strconv.Itoa(ports.Envoy) + "/mcp"
	if opts.verifiers != nil {
		e.extraVerifiers = opts.verifiers(e)
	}
	e.cfgPath = filepath.Join(e.dir, "tokengate.yaml")
	require.NoError(t, os.WriteFile(e.cfgPath, []byte(e.config(opts)), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := stack.Start(ctx, stack.Options{
		Tokengate: bins.tokengate, MCPSample: bins.mcpSample, Envoy: bins.envoy,
		Config: e.cfgPath, Dir: e.dir, Ports: ports, EnvoyRoutes: opts.envoyRoutes,
		EnvoyRequestBody: opts.envoyRequestBody, MCPSampleArgs: opts.mcpSampleArgs,
		EnvoyTLS: opts.envoyTLS, EnvoyForwardClientCert: opts.envoyForwardClientCert,
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

// config renders tokengate's configuration for opts; the extra verifiers
// are those opts.verifiers returned at start.
func (e *env) config(opts envOptions) string {
	routeVerifiers := strings.Join(append([]string{"idp"}, opts.routeVerifiers...), ", ")
	extraRoutes := ""
	if opts.routes != nil {
		extraRoutes = opts.routes(e)
	}
	return `
log: {level: debug, format: text}
verifiers:
  idp:
    type: jwt
    issuer: ` + e.issuer + `
    jwks_uri: ` + e.idp.URL + `/jwks.json
    jwks_min_refetch_interval: 100ms
` + e.extraVerifiers + `
` + opts.topLevel + `
routes:
  - name: mcp
    match: {path_prefix: /mcp}
    verifiers: [` + routeVerifiers + `]
    required_scopes: [mcp:read]
    resource: ` + e.resource + `
` + opts.mcpRoute + `
` + extraRoutes
}

// replaceConfig atomically replaces tokengate's configuration file with
// content (a new file renamed over the old one, as editors and Kubernetes
// ConfigMap updates do), which the running tokengate notices and reloads.
func (e *env) replaceConfig(t *testing.T, content string) {
	t.Helper()
	tmp, err := os.CreateTemp(e.dir, ".tokengate.yaml.*")
	require.NoError(t, err)
	_, err = tmp.WriteString(content)
	require.NoError(t, err)
	require.NoError(t, tmp.Close())
	require.NoError(t, os.Rename(tmp.Name(), e.cfgPath))
}

// mint returns a token signed with the named key, by default for alice
// with scopes "mcp:read mcp:write", issued by the IdP for the resource.
func (e *env) mint(t *testing.T, key, alg string, mutate func(*keys.MintOptions)) string {
	t.Helper()
	kf := filepath.Join(e.keyDirs[key], keys.PrivateKeyFile)
	if strings.HasPrefix(alg, "HS") {
		kf = filepath.Join(e.keyDirs[key], keys.SecretFile)
	}
	o := keys.MintOptions{
		KeyFile:  kf,
		Alg:      alg,
		Kid:      key,
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

// connect opens an MCP session through Envoy at /mcp with the official SDK
// client.
func (e *env) connect(t *testing.T, headers map[string]string) (*mcp.ClientSession, error) {
	t.Helper()
	return e.connectAt(t, "/mcp", headers)
}

// connectAt opens an MCP session through Envoy at path (an Envoy route
// that reaches the upstream's /mcp).
func (e *env) connectAt(t *testing.T, path string, headers map[string]string) (*mcp.ClientSession, error) {
	t.Helper()
	return connectURL(t, e.stack.EnvoyURL()+path, headers)
}

// connectURL opens an MCP session at endpoint with the official SDK client.
func connectURL(t *testing.T, endpoint string, headers map[string]string) (*mcp.ClientSession, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	return client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   endpoint,
		HTTPClient: &http.Client{Transport: headerTransport{headers}},
		MaxRetries: -1,
	}, nil)
}

// whoamiAt connects at path with headers and returns whoami's answer.
func (e *env) whoamiAt(t *testing.T, path string, headers map[string]string) map[string]any {
	t.Helper()
	s, err := e.connectAt(t, path, headers)
	require.NoError(t, err)
	defer s.Close()
	return whoami(t, s)
}

// bearer is the Authorization header map for tok.
func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// whoami calls the sample server's whoami tool.
func whoami(t *testing.T, s *mcp.ClientSession) map[string]any {
	t.Helper()
	res, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
	require.NoError(t, err)
	require.False(t, res.IsError)
	out, ok := res.StructuredContent.(map[string]any)
	require.True(t, ok, "whoami structured output is %T", res.StructuredContent)
	return out
}

// jwtPayload returns the payload of the compact JWS tok as JSON values, as
// mcp-sample's whoami reports it in authorization_claims.
func jwtPayload(t *testing.T, tok string) map[string]any {
	t.Helper()
	msg, err := jws.Parse([]byte(tok), jws.WithCompact())
	require.NoError(t, err)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(msg.Payload(), &claims))
	return claims
}

// whoamiWith connects with tok and returns whoami's answer.
func (e *env) whoamiWith(t *testing.T, tok string) map[string]any {
	t.Helper()
	return e.whoamiAt(t, "/mcp", bearer(tok))
}

// post sends an MCP initialize request through Envoy with the given
// headers and returns the response with its body read.
func (e *env) post(t *testing.T, path string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	resp, body, err := initialize(http.DefaultClient, e.stack.EnvoyURL()+path, headers)
	require.NoError(t, err)
	return resp, body
}

// initialize sends an MCP initialize request to url with the given headers
// and returns the response with its body read. It is safe to call from any
// goroutine.
func initialize(client *http.Client, url string, headers map[string]string) (*http.Response, string, error) {
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}
