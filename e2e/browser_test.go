package e2e

// A real browser (headless Chromium, internal/browser) against Envoy and
// tokengate: contract §10, browser clients. TestBrowserHarness checks the
// harness itself; TestMCPAuthzBrowserCORS is the contract.

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/internal/browser"
)

// pageHost serves one HTML page at / from its own origin
// (http://127.0.0.1:PORT). The page can be set after the server starts, so
// that tokengate's configuration can name the origin first.
type pageHost struct {
	srv  *httptest.Server
	mu   sync.Mutex
	page string
}

func newPageHost(t *testing.T) *pageHost {
	t.Helper()
	p := &pageHost{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		p.mu.Lock()
		page := p.page
		p.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// origin is the page's origin, as the browser sends it in Origin.
func (p *pageHost) origin() string { return p.srv.URL }

// serve sets the page to browser.Page(title, script) and returns its URL.
func (p *pageHost) serve(title, script string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.page = browser.Page(title, script)
	return p.srv.URL + "/"
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestBrowserHarness shows the browser harness works in this test binary:
// a page from a local server runs its script and the test reads the value
// the script wrote into the DOM, and a fetch() from the page reaches a
// running Envoy (here tokengate's RFC 9728 document on a second origin,
// same-origin with Envoy, so no CORS is involved).
func TestBrowserHarness(t *testing.T) {
	b := browser.Shared(t)
	page := newPageHost(t)
	url := page.serve("harness", `({sum: 40 + 2, origin: location.origin})`)
	got := browser.Results[map[string]any](t, b, url)
	assert.Equal(t, map[string]any{"sum": float64(42), "origin": page.origin()}, got)

	e := startEnv(t, envOptions{})
	// A page served through Envoy itself would need an upstream page; load
	// Envoy's own origin instead and fetch the metadata document from it.
	metadata := browser.Eval[map[string]any](t, b, e.metadataURL(),
		`fetch(location.href).then(r => r.json())`)
	assert.Equal(t, e.resource, metadata["resource"])
}

// browserInit is the MCP initialize request the page sends (protocol
// 2025-11-25: a browser client without SEP-2243 headers, like MCP
// Inspector today).
const browserInit = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"browser","version":"1"}}}`

// allowedPageScript runs, in the browser, everything contract §10 promises
// a page from an allowed origin, and returns what the page could see.
func allowedPageScript(envoyURL, metadataURL, token string) string {
	return `(async () => {
  const mcp = ` + jsString(envoyURL+"/mcp") + `;
  const token = ` + jsString(token) + `;
  // One JSON-RPC POST; the answer is JSON or an SSE stream whose first data
  // line is the message.
  const rpc = async (body, headers) => {
    try {
      const r = await fetch(mcp, {method: "POST", body, headers: Object.assign({
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream"}, headers)});
      const text = await r.text();
      let message = null;
      const data = text.split("\n").find(l => l.startsWith("data:"));
      try { message = JSON.parse(data ? data.slice(5) : text); } catch (e) {}
      return {status: r.status, sessionId: r.headers.get("Mcp-Session-Id"),
              wwwAuthenticate: r.headers.get("WWW-Authenticate"), body: data ? null : text, message};
    } catch (e) {
      return {blocked: e.name};
    }
  };
  const out = {};
  out.noToken = await rpc(` + jsString(browserInit) + `, {});
  try {
    const r = await fetch(` + jsString(metadataURL) + `);
    out.metadata = {status: r.status, doc: await r.json()};
  } catch (e) {
    out.metadata = {blocked: e.name};
  }
  const auth = {"Authorization": "Bearer " + token};
  out.initialize = await rpc(` + jsString(browserInit) + `, auth);
  const session = Object.assign({"Mcp-Session-Id": out.initialize.sessionId || "", "MCP-Protocol-Version": "2025-11-25"}, auth);
  out.initialized = await rpc('{"jsonrpc":"2.0","method":"notifications/initialized"}', session);
  out.toolsCall = await rpc('{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello from the browser"}}}', session);
  return out;
})()`
}

// disallowedPageScript tries the same from an origin tokengate does not
// allow, and fetches the public metadata document.
func disallowedPageScript(envoyURL, metadataURL, token string) string {
	return `(async () => {
  const attempt = async (url, init) => {
    try {
      const r = await fetch(url, init);
      return {status: r.status};
    } catch (e) {
      return {blocked: e.name};
    }
  };
  return {
    initialize: await attempt(` + jsString(envoyURL+"/mcp") + `, {method: "POST", body: ` + jsString(browserInit) + `,
      headers: {"Authorization": "Bearer " + ` + jsString(token) + `, "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream"}}),
    metadata: await attempt(` + jsString(metadataURL) + `),
  };
})()`
}

// browserRPC is what allowedPageScript reports for one POST.
type browserRPC struct {
	Blocked         string         `json:"blocked"`
	Status          int            `json:"status"`
	SessionID       *string        `json:"sessionId"`
	WWWAuthenticate *string        `json:"wwwAuthenticate"`
	Body            *string        `json:"body"`
	Message         map[string]any `json:"message"`
}

// TestMCPAuthzBrowserCORS is contract §10 in a real browser: a page from an
// allowed origin uses fetch() against Envoy. The preflight passes; the
// 401's WWW-Authenticate is readable from JavaScript; the RFC 9728 document
// can be fetched cross-origin; with a token, MCP initialize and tools/call
// succeed and Mcp-Session-Id is readable. From a disallowed origin the
// browser blocks the request (fetch rejects), while the public metadata
// document stays readable.
func TestMCPAuthzBrowserCORS(t *testing.T) {
	b := browser.Shared(t)
	allowed, other := newPageHost(t), newPageHost(t)
	e := startEnv(t, envOptions{mcpRoute: `    cors:
      allowed_origins: ["` + allowed.origin() + `"]
      max_age: 10m
`})
	mcpURL := e.stack.EnvoyURL() + "/mcp"
	tok := e.mintScopes(t, "mcp:read")

	t.Run("preflight answered without a token", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodOptions, mcpURL, nil)
		require.NoError(t, err)
		req.Header.Set("Origin", allowed.origin())
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,mcp-protocol-version,mcp-session-id")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusNoContent, resp.StatusCode)
		assert.Equal(t, allowed.origin(), resp.Header.Get("Access-Control-Allow-Origin"))
		assert.Contains(t, headerTokens(resp.Header, "Vary"), "origin")
		assert.Contains(t, headerTokens(resp.Header, "Access-Control-Allow-Methods"), "post")
		allowHeaders := headerTokens(resp.Header, "Access-Control-Allow-Headers")
		for _, h := range []string{"authorization", "content-type", "accept", "mcp-protocol-version", "mcp-session-id",
			"mcp-method", "mcp-name", "last-event-id", "dpop"} {
			assert.Contains(t, allowHeaders, h)
		}
		assert.Equal(t, "600", resp.Header.Get("Access-Control-Max-Age"))

		req.Header.Set("Origin", other.origin())
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, "preflight from a disallowed origin")
		assert.Empty(t, resp.Header.Values("Access-Control-Allow-Origin"))
	})

	t.Run("denials carry CORS headers", func(t *testing.T) {
		resp, _ := e.post(t, "/mcp", map[string]string{"Origin": allowed.origin()})
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Equal(t, allowed.origin(), resp.Header.Get("Access-Control-Allow-Origin"))
		assert.Contains(t, headerTokens(resp.Header, "Vary"), "origin")
		assert.ElementsMatch(t, []string{"www-authenticate", "mcp-session-id", "dpop-nonce"},
			headerTokens(resp.Header, "Access-Control-Expose-Headers"))
	})

	t.Run("a page from the allowed origin", func(t *testing.T) {
		url := allowed.serve("allowed", allowedPageScript(e.stack.EnvoyURL(), e.metadataURL(), tok))
		got := browser.Results[struct {
			NoToken  browserRPC `json:"noToken"`
			Metadata struct {
				Blocked string         `json:"blocked"`
				Status  int            `json:"status"`
				Doc     map[string]any `json:"doc"`
			} `json:"metadata"`
			Initialize  browserRPC `json:"initialize"`
			Initialized browserRPC `json:"initialized"`
			ToolsCall   browserRPC `json:"toolsCall"`
		}](t, b, url)

		// The preflight passed: the POST with Authorization got an answer.
		require.Empty(t, got.NoToken.Blocked, "fetch without a token was blocked")
		assert.Equal(t, http.StatusUnauthorized, got.NoToken.Status)
		require.NotNil(t, got.NoToken.WWWAuthenticate, "WWW-Authenticate must be readable from JavaScript")
		params := challenge(t, []string{*got.NoToken.WWWAuthenticate})
		assert.Equal(t, map[string]string{"resource_metadata": e.metadataURL(), "scope": "mcp:read"}, params)

		require.Empty(t, got.Metadata.Blocked, "fetching the RFC 9728 document was blocked")
		assert.Equal(t, http.StatusOK, got.Metadata.Status)
		assert.Equal(t, e.resource, got.Metadata.Doc["resource"])

		require.Empty(t, got.Initialize.Blocked, "initialize with a token was blocked")
		assert.Equal(t, http.StatusOK, got.Initialize.Status, "initialize: %+v", got.Initialize)
		require.NotNil(t, got.Initialize.SessionID, "Mcp-Session-Id must be readable from JavaScript")
		assert.NotEmpty(t, *got.Initialize.SessionID)
		result, _ := got.Initialize.Message["result"].(map[string]any)
		assert.Equal(t, "2025-11-25", result["protocolVersion"], "initialize: %+v", got.Initialize)

		assert.Equal(t, http.StatusAccepted, got.Initialized.Status, "notifications/initialized: %+v", got.Initialized)

		require.Empty(t, got.ToolsCall.Blocked, "tools/call was blocked")
		assert.Equal(t, http.StatusOK, got.ToolsCall.Status, "tools/call: %+v", got.ToolsCall)
		callResult, _ := got.ToolsCall.Message["result"].(map[string]any)
		content, _ := callResult["content"].([]any)
		require.Len(t, content, 1, "tools/call: %+v", got.ToolsCall)
		assert.Equal(t, "hello from the browser", content[0].(map[string]any)["text"])
	})

	t.Run("a page from a disallowed origin is blocked", func(t *testing.T) {
		url := other.serve("disallowed", disallowedPageScript(e.stack.EnvoyURL(), e.metadataURL(), tok))
		got := browser.Results[map[string]map[string]any](t, b, url)
		assert.Equal(t, map[string]any{"blocked": "TypeError"}, got["initialize"], "fetch must reject")
		assert.Equal(t, map[string]any{"status": float64(http.StatusOK)}, got["metadata"],
			"the RFC 9728 document is open to any origin")
	})
}

// headerTokens returns the lower-cased comma-separated tokens of every
// value of the header name.
func headerTokens(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for _, tok := range strings.Split(v, ",") {
			if tok = strings.ToLower(strings.TrimSpace(tok)); tok != "" {
				out = append(out, tok)
			}
		}
	}
	return out
}
