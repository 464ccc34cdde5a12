package main

import (
	"context"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// serverName is the implementation name the sample server reports to clients.
const serverName = "mcp-sample"

// serverVersion is the implementation version the sample server reports.
const serverVersion = "0.1.0"

// authHeaderPrefix is the lower-cased prefix of the request headers that the
// whoami tool reflects back to the caller. The auth gateway injects these
// headers after it has validated the caller's credentials.
const authHeaderPrefix = "x-auth-"

// authorizationPresentKey is the whoami output key that reports whether an
// Authorization header reached the server.
const authorizationPresentKey = "authorization_present"

// options configures the HTTP handler built by newHandler.
type options struct {
	// DisableLocalhostProtection turns off the SDK's DNS-rebinding protection,
	// which rejects (403) requests that arrive on a loopback address with a
	// non-localhost Host header. It must be set when a proxy forwards requests
	// with the original (non-localhost) Host header.
	DisableLocalhostProtection bool
}

// echoInput is the input of the echo tool.
type echoInput struct {
	// Text is the text to echo back.
	Text string `json:"text" jsonschema:"the text to echo back"`
}

// echoOutput is the structured output of the echo tool.
type echoOutput struct {
	// Text is the text that was received.
	Text string `json:"text" jsonschema:"the text that was received"`
}

// whoamiInput is the (empty) input of the whoami tool.
type whoamiInput struct{}

// newHandler returns an http.Handler that serves the sample MCP server over
// streamable HTTP at /mcp and a plain-text readiness probe at GET /healthz.
func newHandler(opts options) http.Handler {
	server := newMCPServer()
	mcpHandler := mcp.NewStreamableHTTPHandler(
		func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{
			DisableLocalhostProtection: opts.DisableLocalhostProtection,
		},
	)

	mux := http.NewServeMux()
	mux.Handle("/mcp", mcpHandler)
	mux.HandleFunc("GET /healthz", handleHealthz)
	return mux
}

// handleHealthz answers readiness probes with 200 and the body "ok".
func handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok"))
}

// newMCPServer builds the MCP server and registers the echo and whoami tools.
func newMCPServer() *mcp.Server {
	server := mcp.NewServer(&mcp.Implementation{Name: serverName, Version: serverVersion}, nil)
	mcp.AddTool(server, &mcp.Tool{
		Name:        "echo",
		Description: "Echoes the given text back to the caller.",
	}, echoTool)
	mcp.AddTool(server, &mcp.Tool{
		Name: "whoami",
		Description: "Returns a JSON object of the x-auth-* request headers the server received " +
			"and whether an Authorization header reached the server (authorization_present).",
	}, whoamiTool)
	return server
}

// echoTool implements the echo tool: it returns the input text both as text
// content and as structured output.
func echoTool(_ context.Context, _ *mcp.CallToolRequest, in echoInput) (*mcp.CallToolResult, echoOutput, error) {
	res := &mcp.CallToolResult{
		Content: []mcp.Content{&mcp.TextContent{Text: in.Text}},
	}
	return res, echoOutput(in), nil
}

// whoamiTool implements the whoami tool. It returns a flat JSON object mapping
// each lower-cased x-auth-* request header name to its first value, plus
// authorization_present. Because the result has no Content, the SDK uses the
// compact JSON encoding of the output both as structured content and as the
// single text content.
func whoamiTool(_ context.Context, req *mcp.CallToolRequest, _ whoamiInput) (*mcp.CallToolResult, map[string]any, error) {
	var header http.Header
	if req != nil && req.Extra != nil {
		header = req.Extra.Header
	}
	return nil, whoami(header), nil
}

// whoami computes the whoami output from the HTTP request headers: every
// header whose lower-cased name starts with "x-auth-" mapped to its first
// value, and authorization_present reporting whether an Authorization header
// was present.
func whoami(header http.Header) map[string]any {
	out := make(map[string]any, len(header)+1)
	for name, values := range header {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, authHeaderPrefix) && len(values) > 0 {
			out[lower] = values[0]
		}
	}
	out[authorizationPresentKey] = len(header.Values("Authorization")) > 0
	return out
}
