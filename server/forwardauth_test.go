package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/authz"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/keys"
	"github.com/tokengate/tokengate/reason"
)

const (
	faIssuer   = "https://idp.example"
	faResource = "https://mcp.example.com/mcp"
	faMetadata = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
)

// startForwardAuth runs a Server whose JWT verifier trusts a static ES256
// public key (no network), with an mcp route bound to one host and three
// methods and an anonymous /healthz route. It returns the HTTP base URL and
// a minting function for that key.
func startForwardAuth(t *testing.T) (string, func(mutate func(*keys.MintOptions)) string) {
	t.Helper()
	dir := t.TempDir()
	_, err := keys.Generate("ES256", "k1", dir)
	require.NoError(t, err)
	yaml := `
server: {grpc_listen: "127.0.0.1:0", http_listen: "127.0.0.1:0"}
verifiers:
  idp: {type: jwt, issuer: "` + faIssuer + `", public_key_file: "` + filepath.Join(dir, keys.PublicKeyFile) + `"}
routes:
  - name: mcp
    match: {hosts: [mcp.example.com], path_prefix: /mcp, methods: [GET, POST, DELETE]}
    verifiers: [idp]
    required_scopes: [mcp:read]
    resource: ` + faResource + `
  - name: health
    match: {path_exact: /healthz}
    allow_anonymous: true
`
	path := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	cfg, err := config.Load(path, nil)
	require.NoError(t, err)
	srv, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	mint := func(mutate func(*keys.MintOptions)) string {
		o := keys.MintOptions{
			KeyFile: filepath.Join(dir, keys.PrivateKeyFile), Alg: "ES256", Kid: "k1",
			Issuer: faIssuer, Audience: []string{faResource}, Subject: "alice", Scope: "mcp:read mcp:write",
			TTL: time.Hour,
		}
		if mutate != nil {
			mutate(&o)
		}
		tok, err := keys.Mint(o)
		require.NoError(t, err)
		return tok
	}
	return "http://" + srv.HTTPAddr(), mint
}

// convention builds the forward-auth request a gateway sends to ask about
// the original request (method, host, uri).
type convention struct {
	name    string
	request func(t *testing.T, base, method, host, uri string) *http.Request
}

var conventions = []convention{
	{"envoy http_service", func(t *testing.T, base, method, host, uri string) *http.Request {
		r, err := http.NewRequest(method, base+ForwardAuthPrefix+uri, nil)
		require.NoError(t, err)
		r.Host = host
		return r
	}},
	{"traefik/caddy X-Forwarded-*", func(t *testing.T, base, method, host, uri string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, base+ForwardAuthPrefix, nil)
		require.NoError(t, err)
		r.Header.Set("X-Forwarded-Method", method)
		r.Header.Set("X-Forwarded-Uri", uri)
		r.Header.Set("X-Forwarded-Host", host)
		r.Header.Set("X-Forwarded-Proto", "https")
		return r
	}},
	{"nginx X-Original-URI", func(t *testing.T, base, method, host, uri string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, base+ForwardAuthPrefix, nil)
		require.NoError(t, err)
		r.Header.Set("X-Original-URI", uri)
		r.Header.Set("X-Original-Method", method)
		r.Host = host // no X-Forwarded-Host: Host is the fallback
		return r
	}},
}

// answer is a forward-auth response reduced to what a gateway reads.
type answer struct {
	status  int
	headers map[string]string // the headers a case checks; "" means absent
	body    string
}

func TestForwardAuthDecisions(t *testing.T) {
	base, mint := startForwardAuth(t)
	valid := mint(nil)
	expired := mint(func(o *keys.MintOptions) { o.Now = time.Now().Add(-3 * time.Hour) })
	noScope := mint(func(o *keys.MintOptions) { o.Scope = "mcp:write" })
	checked := []string{
		"X-Auth-Sub", "X-Auth-Iss", "X-Auth-Scopes", "X-Auth-Verifier", "X-Auth-Client-Id", HeaderRemove,
		"Www-Authenticate", "Content-Type", "Cache-Control", "Retry-After",
	}
	deny := func(status int, challenge, body string) answer {
		return answer{status, map[string]string{
			"Www-Authenticate": challenge, "Content-Type": "application/json", "Cache-Control": "no-store",
		}, body}
	}
	tests := []struct {
		name              string
		method, host, uri string
		headers           map[string]string
		want              answer
	}{
		{"valid token: 200 with identity headers, the rest to remove", "POST", "mcp.example.com", "/mcp",
			map[string]string{"Authorization": "Bearer " + valid, "X-Auth-Sub": "mallory", "X-Auth-Role": "admin"},
			answer{200, map[string]string{
				"X-Auth-Sub": "alice", "X-Auth-Iss": faIssuer, "X-Auth-Scopes": "mcp:read mcp:write",
				"X-Auth-Verifier": "idp", HeaderRemove: "x-auth-client-id, x-auth-mcp-method, x-auth-mcp-name, authorization, proxy-authorization, x-auth-role",
				"Cache-Control": "no-store",
			}, ""}},
		{"valid token, host with port and query string", "GET", "mcp.example.com:8443", "/mcp/sse?session=1",
			map[string]string{"Authorization": "Bearer " + valid},
			answer{200, map[string]string{
				"X-Auth-Sub": "alice", "X-Auth-Iss": faIssuer, "X-Auth-Scopes": "mcp:read mcp:write",
				"X-Auth-Verifier": "idp", HeaderRemove: "x-auth-client-id, x-auth-mcp-method, x-auth-mcp-name, authorization, proxy-authorization", "Cache-Control": "no-store",
			}, ""}},
		{"anonymous route: 200, client identity headers removed", "GET", "any.example", "/healthz",
			map[string]string{"X-Auth-Sub": "mallory"},
			answer{200, map[string]string{
				HeaderRemove:    "x-auth-client-id, x-auth-iss, x-auth-mcp-method, x-auth-mcp-name, x-auth-scopes, x-auth-sub, x-auth-verifier, authorization, proxy-authorization",
				"Cache-Control": "no-store",
			}, ""}},
		{"expired token: 401 invalid_token", "POST", "mcp.example.com", "/mcp",
			map[string]string{"Authorization": "Bearer " + expired},
			deny(401, `Bearer error="invalid_token", error_description="token_expired", scope="mcp:read", resource_metadata="`+faMetadata+`"`,
				`{"error":"invalid_token","error_description":"token_expired"}`)},
		{"garbage token: 401 invalid_token", "POST", "mcp.example.com", "/mcp",
			map[string]string{"Authorization": "Bearer not-a-jwt"},
			deny(401, `Bearer error="invalid_token", error_description="token_malformed", scope="mcp:read", resource_metadata="`+faMetadata+`"`,
				`{"error":"invalid_token","error_description":"token_malformed"}`)},
		{"no token: 401 with the metadata challenge", "POST", "mcp.example.com", "/mcp", nil,
			deny(401, `Bearer scope="mcp:read", resource_metadata="`+faMetadata+`"`,
				`{"error":"invalid_request","error_description":"missing bearer token"}`)},
		{"token in the query string is never read", "GET", "mcp.example.com", "/mcp?access_token=" + valid, nil,
			deny(401, `Bearer scope="mcp:read", resource_metadata="`+faMetadata+`"`,
				`{"error":"invalid_request","error_description":"missing bearer token"}`)},
		{"missing scope: 403 insufficient_scope", "POST", "mcp.example.com", "/mcp",
			map[string]string{"Authorization": "Bearer " + noScope},
			deny(403, `Bearer error="insufficient_scope", error_description="scope_insufficient", scope="mcp:read", resource_metadata="`+faMetadata+`"`,
				`{"error":"insufficient_scope","error_description":"scope_insufficient"}`)},
		{"another host matches no route", "POST", "other.example.com", "/mcp",
			map[string]string{"Authorization": "Bearer " + valid},
			deny(403, "", `{"error":"access_denied","error_description":"no route"}`)},
		{"a method the route does not list matches no route", "PUT", "mcp.example.com", "/mcp",
			map[string]string{"Authorization": "Bearer " + valid},
			deny(403, "", `{"error":"access_denied","error_description":"no route"}`)},
		{"metadata document: 200 with the RFC 9728 body", "GET", "mcp.example.com", "/.well-known/oauth-protected-resource/mcp",
			map[string]string{"X-Auth-Sub": "mallory"},
			answer{200, map[string]string{
				"Content-Type": "application/json", "Cache-Control": "max-age=300", "Access-Control-Allow-Origin": "*", HeaderRemove: "x-auth-sub",
			}, `{"resource":"` + faResource + `","authorization_servers":["` + faIssuer + `"],"scopes_supported":["mcp:read"],"bearer_methods_supported":["header"],"dpop_signing_alg_values_supported":["ES256","ES384","EdDSA","RS256","PS256"]}`}},
	}
	for _, conv := range conventions {
		t.Run(conv.name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					req := conv.request(t, base, tc.method, tc.host, tc.uri)
					for k, v := range tc.headers {
						req.Header.Set(k, v)
					}
					resp, err := http.DefaultClient.Do(req)
					require.NoError(t, err)
					defer resp.Body.Close()
					b, err := io.ReadAll(resp.Body)
					require.NoError(t, err)

					assert.Equal(t, tc.want.status, resp.StatusCode)
					for _, name := range checked {
						assert.Equal(t, tc.want.headers[name], resp.Header.Get(name), name)
					}
					if strings.HasPrefix(tc.want.body, "{") {
						assert.JSONEq(t, tc.want.body, string(b))
					} else {
						assert.Equal(t, tc.want.body, string(b))
					}
					for _, tok := range []string{valid, expired, noScope} {
						assert.NotContains(t, string(b), tok, "token echoed in the body")
						for name, vs := range resp.Header {
							assert.NotContains(t, strings.Join(vs, ","), tok, "token echoed in %s", name)
						}
					}
				})
			}
		})
	}
}

func TestForwardAuthRefusals(t *testing.T) {
	base, mint := startForwardAuth(t)
	valid := mint(nil)
	tests := []struct {
		name    string
		path    string // requested on tokengate
		host    string
		headers [][2]string
		reason  reason.Code // "" when the request goes on to Check
	}{
		{"no original URI", "/authz", "", nil, reason.ForwardedURIMissing},
		{"X-Forwarded-Uri and X-Original-URI disagree", "/authz", "", [][2]string{
			{"X-Forwarded-Uri", "/healthz"}, {"X-Original-URI", "/mcp"},
		}, reason.ForwardedHeadersConflict},
		{"X-Forwarded-Method and X-Original-Method disagree", "/authz", "", [][2]string{
			{"X-Original-URI", "/mcp"}, {"X-Original-Method", "POST"}, {"X-Forwarded-Method", "GET"},
		}, reason.ForwardedHeadersConflict},
		{"X-Forwarded-Uri repeated with different values", "/authz", "", [][2]string{
			{"X-Forwarded-Uri", "/mcp"}, {"X-Forwarded-Uri", "/healthz"},
		}, reason.ForwardedHeadersConflict},
		{"an Envoy-style path with forwarded headers", "/authz/healthz", "", [][2]string{
			{"X-Forwarded-Uri", "/mcp"},
		}, reason.ForwardedHeadersConflict},
		{"dot segment", "/authz", "", [][2]string{{"X-Original-URI", "/healthz/../mcp"}}, reason.PathNotNormalized},
		{"dot segment at the end", "/authz", "", [][2]string{{"X-Original-URI", "/mcp/.."}}, reason.PathNotNormalized},
		{"double slash", "/authz", "", [][2]string{{"X-Forwarded-Uri", "/mcp//x"}}, reason.PathNotNormalized},
		{"encoded unreserved character", "/authz", "", [][2]string{{"X-Forwarded-Uri", "/%6Dcp"}}, reason.PathNotNormalized},
		{"encoded dot", "/authz", "", [][2]string{{"X-Forwarded-Uri", "/mcp/%2e%2e/x"}}, reason.PathNotNormalized},
		{"encoded slash", "/authz", "", [][2]string{{"X-Forwarded-Uri", "/mcp%2Fx"}}, reason.PathNotNormalized},
		{"encoded backslash", "/authz", "", [][2]string{{"X-Forwarded-Uri", "/mcp%5cx"}}, reason.PathNotNormalized},
		{"backslash", "/authz", "", [][2]string{{"X-Forwarded-Uri", `/mcp\x`}}, reason.PathNotNormalized},
		{"broken escape", "/authz", "", [][2]string{{"X-Forwarded-Uri", "/mcp/%zz"}}, reason.PathNotNormalized},
		{"truncated escape", "/authz", "", [][2]string{{"X-Forwarded-Uri", "/mcp/%4"}}, reason.PathNotNormalized},
		{"absolute URI", "/authz", "", [][2]string{{"X-Forwarded-Uri", "http://mcp.example.com/mcp"}}, reason.PathNotNormalized},
		{"relative path", "/authz", "", [][2]string{{"X-Original-URI", "mcp"}}, reason.PathNotNormalized},
		{"Envoy-style encoded unreserved character", "/authz/%6Dcp", "mcp.example.com", nil, reason.PathNotNormalized},
		// Issue 10, finding 1: the host an upstream would read must be the
		// host tokengate routes on.
		{"Host with two ports", "/authz/mcp", "mcp.example.com:443:1", nil, reason.AuthorityInvalid},
		{"Host with a port and junk", "/authz/mcp", "mcp.example.com:80:x", nil, reason.AuthorityInvalid},
		{"Host with userinfo", "/authz/mcp", "user@mcp.example.com", nil, reason.AuthorityInvalid},
		{"Host list", "/authz/mcp", "mcp.example.com,other", nil, reason.AuthorityInvalid},
		{"X-Forwarded-Host with two ports", "/authz", "", [][2]string{
			{"X-Forwarded-Uri", "/mcp"}, {"X-Forwarded-Host", "mcp.example.com:443:1"},
		}, reason.AuthorityInvalid},
		{"X-Forwarded-Host with userinfo", "/authz", "", [][2]string{
			{"X-Forwarded-Uri", "/mcp"}, {"X-Forwarded-Host", "user@mcp.example.com"},
		}, reason.AuthorityInvalid},
		{"X-Forwarded-Host list", "/authz", "", [][2]string{
			{"X-Forwarded-Uri", "/mcp"}, {"X-Forwarded-Host", "evil.example, mcp.example.com"},
		}, reason.AuthorityInvalid},
		{"X-Forwarded-Host repeated with different values", "/authz", "", [][2]string{
			{"X-Forwarded-Uri", "/mcp"}, {"X-Forwarded-Host", "evil.example"}, {"X-Forwarded-Host", "mcp.example.com"},
		}, reason.ForwardedHeadersConflict},
		{"X-Forwarded-Host valid", "/authz", "", [][2]string{
			{"X-Forwarded-Uri", "/mcp"}, {"X-Forwarded-Host", "MCP.example.com.:8443"},
		}, ""},
		{"both conventions agreeing are accepted", "/authz", "mcp.example.com", [][2]string{
			{"X-Forwarded-Uri", "/mcp"}, {"X-Original-URI", "/mcp"}, {"X-Forwarded-Method", "POST"}, {"X-Original-Method", "POST"},
		}, ""},
		{"a query string is not checked", "/authz", "mcp.example.com", [][2]string{
			{"X-Forwarded-Uri", "/mcp?next=/../%2F%6D//"},
		}, ""},
		{"percent-encoded non-ASCII stays", "/authz", "mcp.example.com", [][2]string{
			{"X-Forwarded-Uri", "/mcp/caf%C3%A9"},
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, base+tc.path, nil)
			require.NoError(t, err)
			if tc.host != "" {
				req.Host = tc.host
			}
			for _, h := range tc.headers {
				req.Header.Add(h[0], h[1])
			}
			req.Header.Set("Authorization", "Bearer "+valid)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			if tc.reason == "" {
				assert.NotEqual(t, http.StatusBadRequest, resp.StatusCode, string(b))
				return
			}
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
			assert.Empty(t, resp.Header.Get("Www-Authenticate"))
			assert.JSONEq(t, `{"error":"invalid_request","error_description":"`+string(tc.reason)+`"}`, string(b))
		})
	}
}

func TestCheckRequestFrom(t *testing.T) {
	type want struct{ method, path, host, scheme string }
	tests := []struct {
		name    string
		method  string
		target  string
		host    string
		headers [][2]string
		want    want
	}{
		{"envoy: method, path and query, Host", "DELETE", "/authz/mcp/x?a=1&b", "mcp.example.com:443", nil,
			want{"DELETE", "/mcp/x?a=1&b", "mcp.example.com:443", "http"}},
		{"envoy: the root path", "GET", "/authz/", "h", nil, want{"GET", "/", "h", "http"}},
		{"traefik: every X-Forwarded-* header", "GET", "/authz", "tokengate:9192", [][2]string{
			{"X-Forwarded-Method", "POST"}, {"X-Forwarded-Uri", "/mcp?x=1"},
			{"X-Forwarded-Host", "mcp.example.com"}, {"X-Forwarded-Proto", "https"},
		}, want{"POST", "/mcp?x=1", "mcp.example.com", "https"}},
		{"nginx: X-Original-URI and X-Original-Method", "GET", "/authz", "tokengate", [][2]string{
			{"X-Original-URI", "/mcp"}, {"X-Original-Method", "POST"}, {"X-Forwarded-Host", "mcp.example.com"},
		}, want{"POST", "/mcp", "mcp.example.com", "http"}},
		{"nginx: without X-Original-Method, the request's method", "HEAD", "/authz", "mcp.example.com", [][2]string{
			{"X-Original-URI", "/mcp"},
		}, want{"HEAD", "/mcp", "mcp.example.com", "http"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, nil)
			r.Host = tc.host
			for _, h := range tc.headers {
				r.Header.Add(h[0], h[1])
			}
			req, code := requestFrom(r)
			require.Empty(t, code)
			assert.Equal(t, tc.want, want{req.Method, req.Path, req.Host, req.Scheme})
		})
	}
}

func TestCheckHeaders(t *testing.T) {
	h := http.Header{}
	h.Add("Authorization", "Bearer x")
	h.Add("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	h.Add("X-Multi", "a")
	h.Add("X-Multi", "b")
	h.Add("Connection", "keep-alive, X-Hop")
	h.Add("X-Hop", "dropped: named by Connection")
	h.Add("Keep-Alive", "timeout=5")
	h.Add("Te", "trailers")
	h.Add("Transfer-Encoding", "chunked")
	h.Add("Upgrade", "websocket")
	h.Add("Proxy-Authorization", "Basic eA==")
	assert.Equal(t, map[string]string{
		"authorization": "Bearer x",
		"traceparent":   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"x-multi":       "a,b",
	}, requestHeaders(h))
}

// TestWriteDecision checks the forward-auth rendering of each kind of
// decision.
func TestWriteDecision(t *testing.T) {
	req := &authz.Headers{Map: map[string]string{"x-auth-role": "admin", "authorization": "Bearer x"}}
	tests := []struct {
		name    string
		d       authz.Decision
		status  int
		headers http.Header
		body    string
	}{
		{"deny without a route", authz.Decision{Kind: authz.Deny, Status: 403, Reason: reason.RouteNotFound}, 403,
			http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}},
			`{"error":"access_denied","error_description":"no route"}`},
		{"unavailable", authz.Decision{Kind: authz.Deny, Status: 503, Reason: reason.JWKSUnavailable}, 503,
			http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}, "Retry-After": {"5"}},
			`{"error":"temporarily_unavailable","error_description":"jwks_unavailable"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			writeDecision(w, &tc.d, req)
			assert.Equal(t, tc.status, w.Code)
			assert.Equal(t, tc.headers, w.Header())
			assert.Equal(t, tc.body, w.Body.String())
		})
	}
}
