package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
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

// startServer starts the sample server on an httptest server and returns it.
func startServer(t *testing.T) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(newHandler(options{}))
	t.Cleanup(ts.Close)
	return ts
}

// connect connects an SDK client to ts, sending header on every request.
func connect(t *testing.T, ts *httptest.Server, header http.Header) *mcp.ClientSession {
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
	cs, err := client.Connect(ctx, transport, nil)
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
	assert.ElementsMatch(t, []string{"echo", "whoami"}, names)
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
	}, whoami(h))
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
