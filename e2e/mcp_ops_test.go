package e2e

// End-to-end tests of MCP per-operation authorization (contract §9, issue
// 12) through the real Envoy with with_request_body: the step-up loop with
// the official Go SDK client (protocol 2026-07-28, Mcp-Method/Mcp-Name
// headers) and with a raw client speaking 2025-11-25 (no headers: the body
// decides), and a forged Mcp-Name header. Every test here starts with
// TestMCPAuthz, so `go test ./e2e -run TestMCPAuthz` runs them all.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/keys"
)

// opsTopLevel is the scope hierarchy of contract §9.
const opsTopLevel = `scope_hierarchy:
  mcp:admin: [mcp:write]
  mcp:write: [mcp:read]
`

// opsRoute is the mcp route's operation rules (contract §9): admin_* tools
// need mcp:admin, echo needs only the route's mcp:read, every other tool
// (whoami) mcp:write.
const opsRoute = `    mcp:
      operations:
        - {method: tools/call, name: "admin_*", scopes: [mcp:admin]}
        - {method: tools/call, name: echo, scopes: [mcp:read]}
        - {method: tools/call, scopes: [mcp:write]}
        - {method: resources/read, name: "sample://secret/*", scopes: [mcp:secrets]}
        - {method: "prompts/*", scopes: [mcp:read]}
      unlisted: allow
      body: auto
`

// startOpsEnv starts a stack whose mcp route has the operation rules above
// and whose Envoy sends the request body with each check.
func startOpsEnv(t *testing.T) *env {
	t.Helper()
	return startEnv(t, envOptions{topLevel: opsTopLevel, mcpRoute: opsRoute, envoyRequestBody: true})
}

// adminResets counts the admin_reset runs in mcp-sample's log.
func (e *env) adminResets(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "mcp-sample.log"))
	require.NoError(t, err)
	return strings.Count(string(b), "tool admin_reset ran")
}

// metadataURL is the route's RFC 9728 document through Envoy.
func (e *env) metadataURL() string {
	return strings.Replace(e.resource, "/mcp", "/.well-known/oauth-protected-resource/mcp", 1)
}

// mintScopes mints an RS256 token for alice with the given scopes.
func (e *env) mintScopes(t *testing.T, scope string) string {
	t.Helper()
	return e.mint(t, "rs", "RS256", func(o *keys.MintOptions) { o.Scope = scope })
}

var authParam = regexp.MustCompile(`([A-Za-z_]+)="((?:[^"\\]|\\.)*)"`)

// challenge parses one Bearer WWW-Authenticate value into its auth-params.
// It fails the test unless the value is exactly one Bearer challenge.
func challenge(t *testing.T, values []string) map[string]string {
	t.Helper()
	require.Len(t, values, 1, "one WWW-Authenticate header: %q", values)
	v := values[0]
	require.True(t, strings.HasPrefix(v, "Bearer "), "Bearer challenge: %q", v)
	require.Equal(t, 1, strings.Count(strings.ToLower(v), "bearer"), "one challenge: %q", v)
	params := map[string]string{}
	for _, m := range authParam.FindAllStringSubmatch(v, -1) {
		_, dup := params[m[1]]
		require.False(t, dup, "auth-param %s twice in %q", m[1], v)
		params[m[1]] = m[2]
	}
	return params
}

// rpcAnswer is one HTTP answer to a JSON-RPC POST.
type rpcAnswer struct {
	status int
	header http.Header
	raw    string         // the body as received
	msg    map[string]any // the JSON-RPC message (from JSON or the first SSE data line), if any
}

// rpcPost POSTs body to url with headers and reads the answer, decoding a
// JSON or text/event-stream JSON-RPC message.
func rpcPost(t *testing.T, url string, headers map[string]string, body string) rpcAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	a := rpcAnswer{status: resp.StatusCode, header: resp.Header}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// Read up to the first message: the server may keep the stream open.
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			a.raw += line + "\n"
			if data, ok := strings.CutPrefix(line, "data:"); ok && strings.TrimSpace(data) != "" {
				require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(data)), &a.msg), "SSE data %q", data)
				break
			}
		}
		return a
	}
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a.raw = string(b)
	if len(strings.TrimSpace(a.raw)) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(b, &a.msg)
	}
	return a
}

// toolCallBody is a JSON-RPC tools/call request.
func toolCallBody(id int, tool string, args map[string]any) string {
	b, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": id, "method": "tools/call",
		"params": map[string]any{"name": tool, "arguments": args},
	})
	return string(b)
}

// legacySession is a raw MCP client speaking protocol 2025-11-25 over
// streamable HTTP: it sends no Mcp-Method/Mcp-Name headers, so tokengate
// can only learn the operation from the body Envoy forwards.
type legacySession struct {
	url, id string
	nextID  int
}

// legacyConnect initializes a 2025-11-25 session with tok through Envoy.
func legacyConnect(t *testing.T, e *env, tok string) *legacySession {
	t.Helper()
	url := e.stack.EnvoyURL() + "/mcp"
	init := rpcPost(t, url, bearer(tok),
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"legacy","version":"1"}}}`)
	require.Equal(t, http.StatusOK, init.status, "initialize: %s", init.raw)
	require.NotNil(t, init.msg, "initialize answer: %s", init.raw)
	result, _ := init.msg["result"].(map[string]any)
	require.Equal(t, "2025-11-25", result["protocolVersion"], "negotiated version: %s", init.raw)
	s := &legacySession{url: url, id: init.header.Get("Mcp-Session-Id"), nextID: 2}
	require.NotEmpty(t, s.id, "Mcp-Session-Id")
	note := rpcPost(t, url, s.headers(tok), `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	require.Equal(t, http.StatusAccepted, note.status, "notifications/initialized: %s", note.raw)
	return s
}

// headers are the session's request headers with tok.
func (s *legacySession) headers(tok string) map[string]string {
	return map[string]string{
		"Authorization": "Bearer " + tok, "Mcp-Session-Id": s.id, "MCP-Protocol-Version": "2025-11-25",
	}
}

// call calls tool with tok (tokens may change within a session: step-up).
func (s *legacySession) call(t *testing.T, tok, tool string, args map[string]any) rpcAnswer {
	t.Helper()
	s.nextID++
	return rpcPost(t, s.url, s.headers(tok), toolCallBody(s.nextID, tool, args))
}

// toolText returns the first text content of a tools/call result message.
func toolText(t *testing.T, a rpcAnswer) string {
	t.Helper()
	require.NotNil(t, a.msg, "no JSON-RPC message: %s", a.raw)
	result, ok := a.msg["result"].(map[string]any)
	require.True(t, ok, "no result: %s", a.raw)
	content, _ := result["content"].([]any)
	require.NotEmpty(t, content, "no content: %s", a.raw)
	first, _ := content[0].(map[string]any)
	text, _ := first["text"].(string)
	return text
}

// assertStepUpChallenge checks a 403 that asks for scope (contract §9: in
// one challenge, the route's required scopes plus the rule's).
func assertStepUpChallenge(t *testing.T, e *env, status int, header http.Header, body, scope string) {
	t.Helper()
	assert.Equal(t, http.StatusForbidden, status, "body: %s", body)
	params := challenge(t, header.Values("WWW-Authenticate"))
	assert.Equal(t, "insufficient_scope", params["error"])
	assert.Equal(t, scope, params["scope"])
	assert.Equal(t, e.metadataURL(), params["resource_metadata"])
	assert.NotContains(t, params["scope"], "offline_access")
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &doc), "JSON body: %s", body)
	assert.Equal(t, "insufficient_scope", doc["error"])
	assert.Empty(t, header.Values("X-Envoy-Upstream-Service-Time"), "answered by tokengate, not the upstream")
}

// TestMCPAuthzStepUpLegacyClient: a client that speaks 2025-11-25 sends no
// Mcp-Method/Mcp-Name headers, so tokengate decides from the JSON-RPC body
// that Envoy forwards. echo is allowed with mcp:read; admin_reset gets a
// 403 naming "mcp:read mcp:admin" and does not run; the same session with a
// token of those scopes then succeeds.
func TestMCPAuthzStepUpLegacyClient(t *testing.T) {
	e := startOpsEnv(t)
	read := e.mintScopes(t, "mcp:read")
	s := legacyConnect(t, e, read)

	echo := s.call(t, read, "echo", map[string]any{"text": "hi"})
	require.Equal(t, http.StatusOK, echo.status, echo.raw)
	assert.Equal(t, "hi", toolText(t, echo))

	denied := s.call(t, read, "admin_reset", nil)
	assertStepUpChallenge(t, e, denied.status, denied.header, denied.raw, "mcp:read mcp:admin")
	assert.Equal(t, 0, e.adminResets(t), "admin_reset must not run on a 403")

	// Step-up: a token with exactly the scopes the challenge named.
	scope := challenge(t, denied.header.Values("WWW-Authenticate"))["scope"]
	admin := e.mintScopes(t, scope)
	ok := s.call(t, admin, "admin_reset", nil)
	require.Equal(t, http.StatusOK, ok.status, ok.raw)
	assert.Equal(t, "reset", toolText(t, ok))
	assert.Equal(t, 1, e.adminResets(t))

	// Other tools need mcp:write, which mcp:admin implies (scope_hierarchy).
	who := s.call(t, read, "whoami", nil)
	assertStepUpChallenge(t, e, who.status, who.header, who.raw, "mcp:read mcp:write")
	for _, scope := range []string{"mcp:read mcp:write", "mcp:write", "mcp:admin"} {
		got := s.call(t, e.mintScopes(t, scope), "whoami", nil)
		require.Equal(t, http.StatusOK, got.status, "%s: %s", scope, got.raw)
		var out map[string]any
		require.NoError(t, json.Unmarshal([]byte(toolText(t, got)), &out))
		assert.Equal(t, "tools/call", out["x-auth-mcp-method"], scope)
		assert.Equal(t, "whoami", out["x-auth-mcp-name"], scope)
	}

	// A POST whose operation cannot be determined fails closed.
	garbage := rpcPost(t, s.url, s.headers(admin), `not json`)
	assert.Equal(t, http.StatusBadRequest, garbage.status, garbage.raw)
	assert.JSONEq(t, `{"error":"invalid_request","error_description":"mcp_operation_unknown"}`, garbage.raw)
	assert.Empty(t, garbage.header.Values("X-Envoy-Upstream-Service-Time"), "answered by tokengate, not the upstream")
	assert.Equal(t, 1, e.adminResets(t))
}

// recorder is the SDK client's HTTP transport: it sends the current token
// and records, per JSON-RPC method, the SEP-2243 headers of the requests
// and the last non-2xx answer to a POST.
type recorder struct {
	token atomic.Pointer[string]

	mu       sync.Mutex
	names    map[string][]string // Mcp-Method -> Mcp-Name values sent
	versions map[string]bool     // MCP-Protocol-Version values sent
	denied   *deniedAnswer       // the last non-2xx answer to a POST
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+*r.token.Load())
	r.mu.Lock()
	if m := req.Header.Get("Mcp-Method"); m != "" {
		r.names[m] = append(r.names[m], req.Header.Get("Mcp-Name"))
	}
	if v := req.Header.Get("MCP-Protocol-Version"); v != "" {
		r.versions[v] = true
	}
	r.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && req.Method == http.MethodPost && resp.StatusCode >= 300 {
		// Keep a copy of the body: the SDK reads and closes the original.
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr != nil {
			return nil, rerr
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		r.mu.Lock()
		r.denied = &deniedAnswer{status: resp.StatusCode, header: resp.Header.Clone(), body: string(b)}
		r.mu.Unlock()
	}
	return resp, err
}

// deniedAnswer is a recorded non-2xx answer.
type deniedAnswer struct {
	status int
	header http.Header
	body   string
}

// lastDenied returns and forgets the last non-2xx answer.
func (r *recorder) lastDenied() *deniedAnswer {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.denied
	r.denied = nil
	return d
}

// sdkConnect connects the official Go SDK client (its default, latest
// protocol: 2026-07-28) through Envoy with tok.
func sdkConnect(t *testing.T, e *env, tok string) (*mcp.ClientSession, *recorder) {
	t.Helper()
	rec := &recorder{names: map[string][]string{}, versions: map[string]bool{}}
	rec.token.Store(&tok)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e-sdk", Version: "1"}, nil)
	s, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: e.stack.EnvoyURL() + "/mcp", HTTPClient: &http.Client{Transport: rec}, MaxRetries: -1,
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, rec
}

// TestMCPAuthzStepUpSDKClient is the step-up loop as the official Go SDK
// client (protocol 2026-07-28) does it: the client sends Mcp-Method and
// Mcp-Name, tokengate decides from them; on the 403 the client reads the
// challenge's scope, gets a token with it and connects again.
func TestMCPAuthzStepUpSDKClient(t *testing.T) {
	e := startOpsEnv(t)
	s, rec := sdkConnect(t, e, e.mintScopes(t, "mcp:read"))

	res, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	require.NoError(t, err)
	require.False(t, res.IsError)
	assert.Equal(t, "hi", res.Content[0].(*mcp.TextContent).Text)

	_, err = s.CallTool(context.Background(), &mcp.CallToolParams{Name: "admin_reset"})
	require.Error(t, err, "admin_reset with mcp:read must be refused")
	denied := rec.lastDenied()
	require.NotNil(t, denied, "no HTTP refusal recorded (err: %v)", err)
	assertStepUpChallenge(t, e, denied.status, denied.header, denied.body, "mcp:read mcp:admin")
	assert.Equal(t, 0, e.adminResets(t), "admin_reset must not run on a 403")

	rec.mu.Lock()
	assert.True(t, rec.versions["2026-07-28"], "the SDK client speaks 2026-07-28: %v", rec.versions)
	assert.Contains(t, rec.names["tools/call"], "admin_reset", "the SDK client sends Mcp-Name")
	rec.mu.Unlock()

	// Step-up: a token with the scopes the challenge named, a new session.
	scope := challenge(t, denied.header.Values("WWW-Authenticate"))["scope"]
	s2, _ := sdkConnect(t, e, e.mintScopes(t, scope))
	res, err = s2.CallTool(context.Background(), &mcp.CallToolParams{Name: "admin_reset"})
	require.NoError(t, err)
	require.False(t, res.IsError)
	assert.Equal(t, "reset", res.Content[0].(*mcp.TextContent).Text)
	assert.Equal(t, 1, e.adminResets(t))

	// scope_hierarchy: mcp:admin alone implies mcp:write and mcp:read.
	s3, _ := sdkConnect(t, e, e.mintScopes(t, "mcp:admin"))
	who := whoami(t, s3)
	assert.Equal(t, "tools/call", who["x-auth-mcp-method"])
	assert.Equal(t, "whoami", who["x-auth-mcp-name"])
	assert.Equal(t, "mcp:admin", who["x-auth-scopes"])
}

// TestMCPAuthzForgedMcpName: the SEP-2243 headers must agree with the body.
// A request whose Mcp-Name (or Mcp-Method) names a harmless operation while
// the body calls admin_reset is answered 400 with the JSON-RPC error -32020
// by tokengate itself, whatever the token's scopes, and admin_reset never
// runs.
func TestMCPAuthzForgedMcpName(t *testing.T) {
	e := startOpsEnv(t)
	url := e.stack.EnvoyURL() + "/mcp"
	tests := []struct {
		name, scope, method, toolName string
	}{
		{"Mcp-Name echo, read token", "mcp:read", "tools/call", "echo"},
		{"Mcp-Name echo, admin token", "mcp:read mcp:admin", "tools/call", "echo"},
		{"Mcp-Name base64 echo", "mcp:read", "tools/call", "=?base64?ZWNobw==?="},
		{"Mcp-Method tools/list", "mcp:read", "tools/list", ""},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := 100 + i
			h := bearer(e.mintScopes(t, tc.scope))
			h["MCP-Protocol-Version"] = "2026-07-28"
			h["Mcp-Method"] = tc.method
			if tc.toolName != "" {
				h["Mcp-Name"] = tc.toolName
			}
			a := rpcPost(t, url, h, toolCallBody(id, "admin_reset", nil))
			assert.Equal(t, http.StatusBadRequest, a.status, a.raw)
			assert.JSONEq(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"error":{"code":-32020,"message":"header mismatch"}}`, id), a.raw)
			// mcp-sample's own SDK also refuses a mismatch (with a longer
			// message): this answer must be tokengate's, so never reach it.
			assert.Empty(t, a.header.Values("X-Envoy-Upstream-Service-Time"), "answered by tokengate, not the upstream")
			assert.Equal(t, 0, e.adminResets(t), "admin_reset must never run")
		})
	}
}
