package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/lestrrat-go/jwx/v3/jws"
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

// authorizationSchemeKey is the whoami output key that holds the scheme of
// the Authorization header that reached the server ("Bearer", "DPoP", ...).
const authorizationSchemeKey = "authorization_scheme"

// authorizationClaimsKey is the whoami output key that holds the payload of
// the JWT in the Authorization header, decoded but not verified.
const authorizationClaimsKey = "authorization_claims"

// secretReportURI is the URI of the sample's "privileged" resource.
const secretReportURI = "sample://secret/report"

// secretReportText is the text of the resource at secretReportURI.
const secretReportText = "quarterly secret report: all systems nominal"

// adminResetLogLine is written to the log each time the admin_reset tool
// runs, so that end-to-end tests can prove it did or did not run.
const adminResetLogLine = "tool admin_reset ran"

// options configures the HTTP handler built by newHandler.
type options struct {
	// DisableLocalhostProtection turns off the SDK's DNS-rebinding protection,
	// which rejects (403) requests that arrive on a loopback address with a
	// non-localhost Host header. It must be set when a proxy forwards requests
	// with the original (non-localhost) Host header.
	DisableLocalhostProtection bool
	// Log receives one line per privileged tool run ("tool admin_reset
	// ran"); nil means os.Stderr.
	Log io.Writer
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

// adminResetInput is the (empty) input of the admin_reset tool.
type adminResetInput struct{}

// adminResetOutput is the structured output of the admin_reset tool.
type adminResetOutput struct {
	// Result is always "reset".
	Result string `json:"result" jsonschema:"always reset"`
}

// lineLogger writes whole lines to w, one writer at a time.
type lineLogger struct {
	mu sync.Mutex
	w  io.Writer
}

// println writes msg and a newline as one write.
func (l *lineLogger) println(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, msg+"\n")
}

// newHandler returns an http.Handler that serves the sample MCP server over
// streamable HTTP at /mcp and a plain-text readiness probe at GET /healthz.
func newHandler(opts options) http.Handler {
	logw := opts.Log
	if logw == nil {
		logw = os.Stderr
	}
	server := newMCPServer(&lineLogger{w: logw})
	getServer := func(*http.Request) *mcp.Server { return server }
	// The SDK serves protocol 2026-07-28 (sessionless, SEP-2567/SEP-2575)
	// only from a stateless handler, and the session-based 2025-11-25
	// protocol (initialize, Mcp-Session-Id) only from a stateful one. The
	// sample serves both, so that tests can use clients of either kind.
	stateful := mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{
		DisableLocalhostProtection: opts.DisableLocalhostProtection,
	})
	stateless := mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{
		DisableLocalhostProtection: opts.DisableLocalhostProtection,
		Stateless:                  true,
	})

	mux := http.NewServeMux()
	mux.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sessionless(r.Header.Get("MCP-Protocol-Version")) {
			stateless.ServeHTTP(w, r)
			return
		}
		stateful.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /healthz", handleHealthz)
	return mux
}

// sessionlessProtocol is the first MCP protocol version without sessions.
const sessionlessProtocol = "2026-07-28"

// sessionless reports whether a request's MCP-Protocol-Version is
// 2026-07-28 or later (versions are dates, so they compare as strings).
func sessionless(version string) bool {
	return len(version) == len(sessionlessProtocol) && version >= sessionlessProtocol
}

// handleHealthz answers readiness probes with 200 and the body "ok".
func handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok"))
}

// newMCPServer builds the MCP server and registers the echo, whoami and
// admin_reset tools, the greeting prompt and the sample://secret/report
// resource. admin_reset writes a line to log each time it runs.
func newMCPServer(log *lineLogger) *mcp.Server {
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
	mcp.AddTool(server, &mcp.Tool{
		Name: "admin_reset",
		Description: "Stands for a privileged tool: returns \"reset\" and logs \"" + adminResetLogLine +
			"\" each time it runs.",
	}, func(context.Context, *mcp.CallToolRequest, adminResetInput) (*mcp.CallToolResult, adminResetOutput, error) {
		log.println(adminResetLogLine)
		res := &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "reset"}}}
		return res, adminResetOutput{Result: "reset"}, nil
	})
	server.AddPrompt(&mcp.Prompt{
		Name:        "greeting",
		Description: "A greeting for the given name (default: world).",
		Arguments:   []*mcp.PromptArgument{{Name: "name", Description: "who to greet"}},
	}, greetingPrompt)
	server.AddResource(&mcp.Resource{
		URI:         secretReportURI,
		Name:        "secret-report",
		Description: "Stands for a sensitive resource.",
		MIMEType:    "text/plain",
	}, secretReport)
	return server
}

// greetingPrompt implements the greeting prompt: one user message
// "Hello, <name>!".
func greetingPrompt(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	name := "world"
	if req != nil && req.Params != nil && req.Params.Arguments["name"] != "" {
		name = req.Params.Arguments["name"]
	}
	return &mcp.GetPromptResult{
		Description: "A greeting",
		Messages: []*mcp.PromptMessage{{
			Role:    "user",
			Content: &mcp.TextContent{Text: fmt.Sprintf("Hello, %s!", name)},
		}},
	}, nil
}

// secretReport serves the sample://secret/report resource (the SDK calls it
// for that URI only).
func secretReport(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{
		URI: secretReportURI, MIMEType: "text/plain", Text: secretReportText,
	}}}, nil
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
// was present. When one was, authorization_scheme is its scheme as sent and,
// if its credential is a compact JWS whose payload is a JSON object,
// authorization_claims is that payload, decoded but not verified.
func whoami(header http.Header) map[string]any {
	out := make(map[string]any, len(header)+3)
	for name, values := range header {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, authHeaderPrefix) && len(values) > 0 {
			out[lower] = values[0]
		}
	}
	authz := header.Values("Authorization")
	out[authorizationPresentKey] = len(authz) > 0
	if len(authz) == 0 {
		return out
	}
	scheme, credential, _ := strings.Cut(strings.TrimSpace(authz[0]), " ")
	out[authorizationSchemeKey] = scheme
	if claims, ok := jwtClaims(strings.TrimSpace(credential)); ok {
		out[authorizationClaimsKey] = claims
	}
	return out
}

// jwtClaims returns the payload of credential if it is a compact JWS whose
// payload is a JSON object. The signature is not verified: the sample server
// only shows what reached it.
func jwtClaims(credential string) (map[string]any, bool) {
	if strings.Count(credential, ".") != 2 {
		return nil, false
	}
	msg, err := jws.Parse([]byte(credential), jws.WithCompact())
	if err != nil {
		return nil, false
	}
	var claims map[string]any
	if err := json.Unmarshal(msg.Payload(), &claims); err != nil || claims == nil {
		return nil, false
	}
	return claims, true
}
