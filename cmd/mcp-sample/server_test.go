package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// headerRoundTripper adds fixed headers to every outgoing request.
type headerRoundTripper struct {
	header http.Header
	base   http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (rt headerRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for name, values := range rt.header {
		for _, v := range values {
			req.Header.Add(name, v)
		}
	}
	return rt.base.RoundTrip(req)
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startServer starts the sample server on an httptest server and returns it.
func startServer(t *testing.T) *httptest.Server {
	t.Helper()
	ts, _ := startServerWithLog(t)
	return ts
}

// startServerWithLog starts the sample server and returns it with the
// buffer that receives its log lines.
func startServerWithLog(t *testing.T) (*httptest.Server, *syncBuffer) {
	t.Helper()
	log := &syncBuffer{}
	ts := httptest.NewServer(newHandler(options{Log: log}))
	t.Cleanup(ts.Close)
	return ts, log
}

// connect connects an SDK client to ts, sending header on every request.
func connect(t *testing.T, ts *httptest.Server, header http.Header) *mcp.ClientSession {
	t.Helper()
	return connectVersion(t, ts, header, "")
}

// connectVersion is connect asking for protocol version ("": the SDK's
// latest).
func connectVersion(t *testing.T, ts *httptest.Server, header http.Header, version string) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	client := mcp.NewClient(&mcp.Implementation{Name: "mcp-sample-test", Version: "v0.0.1"}, nil)
	transport := &mcp.StreamableClientTransport{
		Endpoint: ts.URL + "/mcp",
		HTTPClient: &http.Client{
			Transport: headerRoundTripper{header: header, base: ts.Client().Transport},
		},
	}
	cs, err := client.Connect(ctx, transport, &mcp.ClientSessionOptions{ProtocolVersion: version})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// callWhoami calls the whoami tool and returns the decoded text content and
// structured content, after checking that both are the same JSON object.
func callWhoami(t *testing.T, cs *mcp.ClientSession) map[string]any {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
	require.NoError(t, err)
	require.False(t, res.IsError, "whoami returned a tool error: %+v", res.Content)
	require.Len(t, res.Content, 1)
	text, ok := res.Content[0].(*mcp.TextContent)
	require.True(t, ok, "content is %T, want *mcp.TextContent", res.Content[0])

	var fromText map[string]any
	require.NoError(t, json.Unmarshal([]byte(text.Text), &fromText))
	structured, err := json.Marshal(res.StructuredContent)
	require.NoError(t, err)
	var fromStructured map[string]any
	require.NoError(t, json.Unmarshal(structured, &fromStructured))
	assert.Equal(t, fromText, fromStructured, "text and structured content differ")
	return fromStructured
}

// authHeaders returns the headers the auth gateway would inject, optionally
// with the caller's Authorization header still attached.
func authHeaders(withAuthorization bool) http.Header {
	h := http.Header{}
	h.Set("X-Auth-Sub", "alice")
	h.Set("X-Auth-Scopes", "mcp:read")
	if withAuthorization {
		h.Set("Authorization", "Bearer x")
	}
	return h
}

func TestListTools(t *testing.T) {
	cs := connect(t, startServer(t), authHeaders(true))
	res, err := cs.ListTools(context.Background(), nil)
	require.NoError(t, err)
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	assert.ElementsMatch(t, []string{"echo", "whoami", "admin_reset"}, names)
}

func TestEcho(t *testing.T) {
	cs := connect(t, startServer(t), authHeaders(true))
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{
		Name:      "echo",
		Arguments: map[string]any{"text": "hello, world"},
	})
	require.NoError(t, err)
	require.False(t, res.IsError, "echo returned a tool error: %+v", res.Content)
	require.Len(t, res.Content, 1)
	text, ok := res.Content[0].(*mcp.TextContent)
	require.True(t, ok, "content is %T, want *mcp.TextContent", res.Content[0])
	assert.Equal(t, "hello, world", text.Text)

	structured, err := json.Marshal(res.StructuredContent)
	require.NoError(t, err)
	assert.JSONEq(t, `{"text":"hello, world"}`, string(structured))
}

func TestEchoRequiresText(t *testing.T) {
	cs := connect(t, startServer(t), nil)
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{
		Name:      "echo",
		Arguments: map[string]any{},
	})
	require.NoError(t, err)
	assert.True(t, res.IsError, "echo without text should be a tool error")
}

func TestWhoami(t *testing.T) {
	ts := startServer(t)

	t.Run("with authorization", func(t *testing.T) {
		got := callWhoami(t, connect(t, ts, authHeaders(true)))
		assert.Equal(t, map[string]any{
			"x-auth-sub":            "alice",
			"x-auth-scopes":         "mcp:read",
			"authorization_present": true,
			"authorization_scheme":  "Bearer",
		}, got)
	})

	t.Run("with a JWT", func(t *testing.T) {
		h := authHeaders(false)
		h.Set("Authorization", "Bearer "+testJWT)
		got := callWhoami(t, connect(t, ts, h))
		assert.Equal(t, map[string]any{
			"x-auth-sub":            "alice",
			"x-auth-scopes":         "mcp:read",
			"authorization_present": true,
			"authorization_scheme":  "Bearer",
			"authorization_claims":  map[string]any{"iss": "https://idp.example", "sub": "alice", "scope": "mcp:read", "exp": float64(4102444800)},
		}, got)
	})

	t.Run("without authorization", func(t *testing.T) {
		got := callWhoami(t, connect(t, ts, authHeaders(false)))
		assert.Equal(t, map[string]any{
			"x-auth-sub":            "alice",
			"x-auth-scopes":         "mcp:read",
			"authorization_present": false,
		}, got)
	})

	t.Run("no headers", func(t *testing.T) {
		got := callWhoami(t, connect(t, ts, nil))
		assert.Equal(t, map[string]any{"authorization_present": false}, got)
	})
}

func TestWhoamiFirstValueAndCase(t *testing.T) {
	h := http.Header{
		"X-Auth-Sub":    {"alice", "mallory"},
		"X-AUTH-TENANT": {"acme"},
		"X-Other":       {"ignored"},
		"Authorization": {"Bearer x"},
	}
	assert.Equal(t, map[string]any{
		"x-auth-sub":            "alice",
		"x-auth-tenant":         "acme",
		"authorization_present": true,
		"authorization_scheme":  "Bearer",
	}, whoami(h))
}

// testJWT is a compact JWS with a placeholder signature (whoami never
// checks it) whose payload is
// {"iss":"https://idp.example","sub":"alice","scope":"mcp:read","exp":4102444800}.
const testJWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." +
	"eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiYWxpY2UiLCJzY29wZSI6Im1jcDpyZWFkIiwiZXhwIjo0MTAyNDQ0ODAwfQ." +
	"c2lnbmF0dXJlLW5vdC1jaGVja2Vk"

func TestWhoamiAuthorization(t *testing.T) {
	claims := map[string]any{"iss": "https://idp.example", "sub": "alice", "scope": "mcp:read", "exp": float64(4102444800)}
	tests := []struct {
		name          string
		authorization []string
		want          map[string]any
	}{
		{"absent", nil, map[string]any{"authorization_present": false}},
		{"bearer JWT", []string{"Bearer " + testJWT},
			map[string]any{"authorization_present": true, "authorization_scheme": "Bearer", "authorization_claims": claims}},
		{"scheme as sent", []string{"bearer " + testJWT},
			map[string]any{"authorization_present": true, "authorization_scheme": "bearer", "authorization_claims": claims}},
		{"DPoP JWT", []string{"DPoP " + testJWT},
			map[string]any{"authorization_present": true, "authorization_scheme": "DPoP", "authorization_claims": claims}},
		{"opaque token", []string{"Bearer dev-alice"},
			map[string]any{"authorization_present": true, "authorization_scheme": "Bearer"}},
		{"basic", []string{"Basic YWxpY2U6cHc="},
			map[string]any{"authorization_present": true, "authorization_scheme": "Basic"}},
		{"scheme only", []string{"Bearer"},
			map[string]any{"authorization_present": true, "authorization_scheme": "Bearer"}},
		{"three parts, payload not base64url", []string{"Bearer a.!!!.c"},
			map[string]any{"authorization_present": true, "authorization_scheme": "Bearer"}},
		{"three parts, payload not an object", []string{"Bearer eyJhbGciOiJIUzI1NiJ9.WzEsMl0.c2ln"},
			map[string]any{"authorization_present": true, "authorization_scheme": "Bearer"}},
		{"first header wins", []string{"Basic YWxpY2U6cHc=", "Bearer " + testJWT},
			map[string]any{"authorization_present": true, "authorization_scheme": "Basic"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.authorization {
				h.Add("Authorization", v)
			}
			assert.Equal(t, tc.want, whoami(h))
		})
	}
}

func TestAdminReset(t *testing.T) {
	ts, log := startServerWithLog(t)
	cs := connect(t, ts, nil)
	assert.Empty(t, log.String(), "admin_reset has not run yet")

	for i := 1; i <= 2; i++ {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "admin_reset"})
		require.NoError(t, err)
		require.False(t, res.IsError, "admin_reset returned a tool error: %+v", res.Content)
		require.Len(t, res.Content, 1)
		text, ok := res.Content[0].(*mcp.TextContent)
		require.True(t, ok, "content is %T, want *mcp.TextContent", res.Content[0])
		assert.Equal(t, "reset", text.Text)
		assert.Equal(t, strings.Repeat("tool admin_reset ran\n", i), log.String(), "one log line per run")
	}

	// Other tools do not log the line.
	_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}})
	require.NoError(t, err)
	assert.Equal(t, "tool admin_reset ran\ntool admin_reset ran\n", log.String())
}

func TestGreetingPrompt(t *testing.T) {
	cs := connect(t, startServer(t), nil)
	list, err := cs.ListPrompts(context.Background(), nil)
	require.NoError(t, err)
	require.Len(t, list.Prompts, 1)
	assert.Equal(t, "greeting", list.Prompts[0].Name)

	for _, tc := range []struct {
		name string
		args map[string]string
		want string
	}{
		{"named", map[string]string{"name": "alice"}, "Hello, alice!"},
		{"default", nil, "Hello, world!"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := cs.GetPrompt(context.Background(), &mcp.GetPromptParams{Name: "greeting", Arguments: tc.args})
			require.NoError(t, err)
			require.Len(t, res.Messages, 1)
			assert.Equal(t, mcp.Role("user"), res.Messages[0].Role)
			text, ok := res.Messages[0].Content.(*mcp.TextContent)
			require.True(t, ok, "content is %T, want *mcp.TextContent", res.Messages[0].Content)
			assert.Equal(t, tc.want, text.Text)
		})
	}

	_, err = cs.GetPrompt(context.Background(), &mcp.GetPromptParams{Name: "nope"})
	assert.Error(t, err, "an unknown prompt is an error")
}

func TestSecretReportResource(t *testing.T) {
	cs := connect(t, startServer(t), nil)
	list, err := cs.ListResources(context.Background(), nil)
	require.NoError(t, err)
	require.Len(t, list.Resources, 1)
	assert.Equal(t, "sample://secret/report", list.Resources[0].URI)

	res, err := cs.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: "sample://secret/report"})
	require.NoError(t, err)
	require.Len(t, res.Contents, 1)
	assert.Equal(t, "sample://secret/report", res.Contents[0].URI)
	assert.Equal(t, "text/plain", res.Contents[0].MIMEType)
	assert.Equal(t, "quarterly secret report: all systems nominal", res.Contents[0].Text)

	_, err = cs.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: "sample://secret/other"})
	assert.Error(t, err, "an unknown resource is an error")
}

func TestHealthz(t *testing.T) {
	ts := startServer(t)
	resp, err := ts.Client().Get(ts.URL + "/healthz")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok", string(body))
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
}

// TestProtocolVersions shows the sample serves the SDK client at both
// protocol revisions: 2026-07-28 without a session, 2025-11-25 with one.
func TestProtocolVersions(t *testing.T) {
	ts := startServer(t)
	tests := []struct {
		ask, want   string
		wantSession bool
	}{
		{"", "2026-07-28", false},
		{"2026-07-28", "2026-07-28", false},
		{"2025-11-25", "2025-11-25", true},
		{"2025-06-18", "2025-06-18", true},
	}
	for _, tc := range tests {
		t.Run("ask "+tc.ask, func(t *testing.T) {
			cs := connectVersion(t, ts, authHeaders(false), tc.ask)
			assert.Equal(t, tc.want, cs.InitializeResult().ProtocolVersion)
			assert.Equal(t, tc.wantSession, cs.ID() != "", "session id %q", cs.ID())
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": tc.want}})
			require.NoError(t, err)
			assert.Equal(t, tc.want, res.Content[0].(*mcp.TextContent).Text)
			assert.Equal(t, "alice", callWhoami(t, cs)["x-auth-sub"], "headers reach the tools")
		})
	}
}

func TestSessionless(t *testing.T) {
	for v, want := range map[string]bool{
		"": false, "2025-11-25": false, "2026-07-27": false, "2026-07-28": true, "2027-01-01": true, "2026-07-28x": false, "9": false,
	} {
		assert.Equal(t, want, sessionless(v), v)
	}
}
