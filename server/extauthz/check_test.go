package extauthz

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tokengate/tokengate/authz"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/keys"
	"github.com/tokengate/tokengate/verify"
)

// testNow is the verifiers' clock and the tokens' issue time.
var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	oktaIssuer     = "https://idp.example/oauth2/default"
	partnerIssuer  = "https://partner.example"
	internalIssuer = "internal-services"
	remoteIssuer   = "https://remote.example"
	mcpResource    = "https://mcp.example.com/mcp"
)

// testConfig is the policy the fixtures run against. {{dir}} is replaced by
// the directory holding the generated keys; the remote verifier's jwks_uri
// comes from the environment.
const testConfig = `
server:
  clock_skew: 60s
verifiers:
  okta:
    type: jwt
    issuer: ` + oktaIssuer + `
    public_key_file: {{dir}}/okta/public.pem
  partner:
    type: jwt
    issuer: ` + partnerIssuer + `
    public_key_file: {{dir}}/partner/public.pem
    audiences: [api://partner]
  internal:
    type: jwt
    issuer: ` + internalIssuer + `
    hmac_secret_file: {{dir}}/internal/secret
    algorithms: [HS256]
    audiences: [internal]
  remote:
    type: jwt
    issuer: ` + remoteIssuer + `
    jwks_uri: https://replaced.by.the.environment/keys
routes:
  - name: health
    match: {path_exact: /healthz}
    allow_anonymous: true
  - name: mcp
    match:
      hosts: ["mcp.example.com", "*.internal"]
      path_prefix: /mcp
      methods: [GET, POST, DELETE]
    verifiers: [okta, partner, internal]
    required_scopes: [mcp:read, mcp:write]
    resource: ` + mcpResource + `
    claim_headers:
      x-user-email: email
      x-user-age: age
      x-user-admin: admin
      x-user-groups: groups
      x-user-address: address
      x-user-missing: missing
  - name: forward
    match: {path_exact: /forward}
    verifiers: [okta]
    resource: https://mcp.example.com/forward
    forward_authorization: true
  - name: internal-api
    match: {path_prefix: /internal-api}
    verifiers: [internal]
  - name: remote
    match: {path_prefix: /remote}
    verifiers: [remote]
    resource: https://mcp.example.com/remote
  - name: root
    match: {path_prefix: /root}
    verifiers: [okta]
    resource: https://api.example.com
    claim_headers: {x-tenant: tenant}
  - name: ops
    match: {path_prefix: /ops}
    verifiers: [okta]
    required_scopes: [mcp:read]
    resource: https://mcp.example.com/ops
    mcp:
      operations:
        - {method: tools/call, name: "admin_*", scopes: [mcp:admin]}
        - {method: tools/call, scopes: [mcp:write]}
        - {method: resources/read, name: "sample://secret/*", scopes: [mcp:secrets]}
        - {method: "prompts/*", scopes: [mcp:read]}
    cors:
      allowed_origins: ["https://inspector.example.com"]
  - name: strict
    match: {path_prefix: /strict}
    verifiers: [okta]
    resource: https://mcp.example.com/strict
    mcp:
      unlisted: deny
      operations:
        - {method: initialize}
        - {method: "notifications/*"}
        - {method: tools/list}
scope_hierarchy:
  mcp:admin: [mcp:write]
  mcp:write: [mcp:read]
`

// testPolicy builds the fixtures' policy through config.Load and authz.Build,
// with real keys, and mints the named tokens the fixtures refer to.
func testPolicy(t *testing.T) (*authz.Policy, map[string]string) {
	t.Helper()
	ps, tokens := testPolicies(t, testConfig)
	return ps[0], tokens
}

// testPolicies builds one policy per configuration template, all sharing
// the same keys and tokens.
func testPolicies(t *testing.T, templates ...string) ([]*authz.Policy, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []struct{ alg, kid, sub string }{
		{"ES256", "okta-1", "okta"},
		{"ES256", "okta-1", "impostor"}, // same kid, other key: bad signature
		{"RS256", "partner-1", "partner"},
		{"HS256", "", "internal"},
	} {
		_, err := keys.Generate(k.alg, k.kid, filepath.Join(dir, k.sub))
		require.NoError(t, err)
	}

	// The remote verifier's identity provider is down.
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	t.Cleanup(idp.Close)

	var policies []*authz.Policy
	for i, tmpl := range templates {
		path := filepath.Join(dir, fmt.Sprintf("tokengate-%d.yaml", i))
		require.NoError(t, os.WriteFile(path, []byte(strings.ReplaceAll(tmpl, "{{dir}}", dir)), 0o600))
		cfg, err := config.Load(path, []string{"TOKENGATE_VERIFIERS__REMOTE__JWKS_URI=" + idp.URL + "/keys"})
		require.NoError(t, err)
		p, err := authz.Build(cfg, authz.BuildOptions{
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Now:    func() time.Time { return testNow },
		})
		require.NoError(t, err)
		policies = append(policies, p)
	}

	mint := func(o keys.MintOptions) string {
		t.Helper()
		if o.Now.IsZero() {
			o.Now = testNow
		}
		tok, err := keys.Mint(o)
		require.NoError(t, err)
		return tok
	}
	okta := func(scope string, claims map[string]any) keys.MintOptions {
		return keys.MintOptions{
			KeyFile: filepath.Join(dir, "okta", keys.PrivateKeyFile), Alg: "ES256", Kid: "okta-1",
			Issuer:   oktaIssuer,
			Audience: []string{mcpResource, "https://mcp.example.com/forward", "https://api.example.com", "https://mcp.example.com/ops", "https://mcp.example.com/strict"},
			Subject:  "alice", Scope: scope, Claims: claims,
		}
	}
	profile := map[string]any{
		"client_id": "cli-1",
		"email":     "alice@example.com",
		"age":       42,
		"admin":     true,
		"groups":    []string{"eng", "ops"},
		"address":   map[string]any{"zip": "75001", "city": "Paris"},
	}
	expired := okta("mcp:read mcp:write", nil)
	expired.Now, expired.TTL = testNow.Add(-2*time.Hour), time.Hour
	untrusted := okta("mcp:read mcp:write", nil)
	untrusted.Issuer = "https://evil.example"
	impostor := okta("mcp:read mcp:write", nil)
	impostor.KeyFile = filepath.Join(dir, "impostor", keys.PrivateKeyFile)
	remote := okta("mcp:read", nil)
	remote.Issuer, remote.Audience = remoteIssuer, []string{"https://mcp.example.com/remote"}
	ctl := okta("mcp:read mcp:write", map[string]any{"email": "a@example.com\r\nx-auth-sub: root"})

	tokens := map[string]string{
		"valid":     mint(okta("mcp:read mcp:write", profile)),
		"expired":   mint(expired),
		"noscope":   mint(okta("mcp:read", nil)),
		"untrusted": mint(untrusted),
		"impostor":  mint(impostor),
		"remote":    mint(remote),
		"ctl":       mint(ctl),
		"tenant":    mint(okta("", map[string]any{"tenant": "acme"})),
		"admin":     mint(okta("mcp:admin", nil)),
		"partner": mint(keys.MintOptions{
			KeyFile: filepath.Join(dir, "partner", keys.PrivateKeyFile), Alg: "RS256", Kid: "partner-1",
			Issuer: partnerIssuer, Audience: []string{"api://partner"}, Subject: "bob",
			Scope: "mcp:write mcp:read openid", Claims: map[string]any{"azp": "partner-app"}, Type: "at+jwt",
		}),
		"internal": mint(keys.MintOptions{
			KeyFile: filepath.Join(dir, "internal", keys.SecretFile), Alg: "HS256",
			Issuer: internalIssuer, Audience: []string{"internal"}, Subject: "svc-batch",
			Scope: "mcp:read mcp:write",
		}),
		"internal-expired": mint(keys.MintOptions{
			KeyFile: filepath.Join(dir, "internal", keys.SecretFile), Alg: "HS256",
			Issuer: internalIssuer, Audience: []string{"internal"}, Subject: "svc-batch",
			Now: testNow.Add(-time.Hour), TTL: time.Minute,
		}),
		"opaque": "2YotnFZFEjr1zCsicMWpAA",
		"huge":   strings.Repeat("a", verify.MaxTokenSize+1),
	}
	return policies, tokens
}

// fixture is one JSON file in testdata/check.
type fixture struct {
	Description string          `json:"description"`
	Request     json.RawMessage `json:"request"`
	Want        struct {
		// Status is 0 for allow, else the HTTP status of the direct answer.
		Status int `json:"status"`
		// Headers are exactly the headers set: upstream headers on allow,
		// response headers otherwise.
		Headers map[string]string `json:"headers"`
		// Remove are exactly the headers_to_remove (allow only).
		Remove []string `json:"remove"`
		// Body is the JSON body of a direct answer.
		Body json.RawMessage `json:"body"`
		// ClientHeaders are exactly the headers added to the upstream's
		// response (allow only).
		ClientHeaders map[string]string `json:"client_headers"`
		// Metadata are dynamic metadata fields the answer must carry.
		Metadata map[string]string `json:"metadata"`
	} `json:"want"`
}

// placeholder is "{{token:NAME}}" (the token) or "{{bearer64:NAME}}" (the
// base64 of "Bearer " and the token, for header_map raw values).
var placeholder = regexp.MustCompile(`\{\{(token|bearer64):([a-z-]+)\}\}`)

// loadFixture reads a fixture and substitutes its token placeholders.
func loadFixture(t *testing.T, path string, tokens map[string]string) (*fixture, *authv3.CheckRequest) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var f fixture
	require.NoError(t, json.Unmarshal(data, &f))
	require.NotEmpty(t, f.Description, "every fixture says what it represents")
	raw := placeholder.ReplaceAllStringFunc(string(f.Request), func(m string) string {
		sub := placeholder.FindStringSubmatch(m)
		tok, ok := tokens[sub[2]]
		require.True(t, ok, "unknown token placeholder %s", m)
		if sub[1] == "bearer64" {
			return base64.StdEncoding.EncodeToString([]byte("Bearer " + tok))
		}
		return tok
	})
	var req authv3.CheckRequest
	require.NoError(t, protojson.Unmarshal([]byte(raw), &req))
	return &f, &req
}

// TestCheckFixtures runs every CheckRequest in testdata/check through
// Service.Check and compares the whole answer with the fixture's "want".
func TestCheckFixtures(t *testing.T) {
	p, tokens := testPolicy(t)
	svc := newService(p, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)

	files, err := filepath.Glob(filepath.Join("testdata", "check", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".json"), func(t *testing.T) {
			f, req := loadFixture(t, path, tokens)
			resp, err := svc.Check(context.Background(), req)
			require.NoError(t, err, "Check answers every request")
			require.NotNil(t, resp)
			for k, v := range f.Want.Metadata {
				assert.Equal(t, v, resp.GetDynamicMetadata().GetFields()[k].GetStringValue(), "dynamic metadata %s", k)
			}
			if _, ok := resp.GetDynamicMetadata().GetFields()["sub"]; ok {
				assert.NotEqual(t, f.Want.Status, 401, "a refused token's subject is never reported")
			}

			if f.Want.Status == 0 {
				ok := resp.GetOkResponse()
				require.NotNil(t, ok, "want allow, got %v", resp)
				assert.Equal(t, int32(codes.OK), resp.GetStatus().GetCode())
				set := map[string]string{}
				for _, h := range ok.GetHeaders() {
					_, dup := set[h.GetHeader().GetKey()]
					assert.False(t, dup, "header %s set twice", h.GetHeader().GetKey())
					set[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
				}
				assert.Equal(t, nonNilMap(f.Want.Headers), set, "upstream headers")
				assert.ElementsMatch(t, f.Want.Remove, ok.GetHeadersToRemove(), "headers_to_remove")
				toClient := map[string]string{}
				for _, h := range ok.GetResponseHeadersToAdd() {
					toClient[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
				}
				assert.Equal(t, nonNilMap(f.Want.ClientHeaders), toClient, "response_headers_to_add")
				for _, name := range ok.GetHeadersToRemove() {
					_, both := set[name]
					assert.False(t, both, "%s is both set and removed", name)
				}
				return
			}

			denied := resp.GetDeniedResponse()
			require.NotNil(t, denied, "want a direct answer, got %v", resp)
			assert.Equal(t, f.Want.Status, int(denied.GetStatus().GetCode()), "HTTP status")
			assert.NotEqual(t, int32(codes.OK), resp.GetStatus().GetCode(), "a direct answer is never an OK check")
			got := map[string]string{}
			for _, h := range denied.GetHeaders() {
				got[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
			}
			assert.Equal(t, nonNilMap(f.Want.Headers), got, "response headers")
			if f.Want.Status == 204 {
				assert.Empty(t, denied.GetBody(), "a preflight answer has no body")
				return
			}
			require.NotEmpty(t, f.Want.Body, "fixture wants a body")
			assert.JSONEq(t, string(f.Want.Body), denied.GetBody())
			if f.Want.Status != 200 {
				// Error bodies are byte for byte {"error":...,"error_description":...}.
				var compact bytes.Buffer
				require.NoError(t, json.Compact(&compact, f.Want.Body))
				assert.Equal(t, compact.String(), denied.GetBody())
			}
			assert.Empty(t, f.Want.Remove, "a direct answer removes nothing")

			// No token ever appears in a deny body or header.
			for name, tok := range tokens {
				assert.NotContains(t, denied.GetBody(), tok, "body holds token %s", name)
				for _, v := range got {
					assert.NotContains(t, v, tok, "header holds token %s", name)
				}
			}
		})
	}
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// TestCheckObserver checks what the observer (the metrics) is told: the
// route, the verifier and a one-word reason, never a token.
func TestCheckObserver(t *testing.T) {
	p, tokens := testPolicy(t)
	tests := []struct {
		name                              string
		host, path, auth                  string
		route, verifier, decision, reason string
	}{
		{"allow", "mcp.example.com", "/mcp", "Bearer " + tokens["valid"], "mcp", "okta", "allow", "ok"},
		{"expired", "mcp.example.com", "/mcp", "Bearer " + tokens["expired"], "mcp", "okta", "deny", "token_expired"},
		{"scope", "mcp.example.com", "/mcp", "Bearer " + tokens["noscope"], "mcp", "okta", "deny", "scope_insufficient"},
		{"no token", "mcp.example.com", "/mcp", "", "mcp", "", "deny", "token_missing"},
		{"no route", "other.example", "/mcp", "", "", "", "deny", "route_not_found"},
		{"anonymous", "any", "/healthz", "", "health", "", "allow", "anonymous"},
		{"metadata", "mcp.example.com", "/.well-known/oauth-protected-resource/mcp", "", "mcp", "", "metadata", "metadata"},
		{"unavailable", "mcp.example.com", "/remote", "Bearer " + tokens["remote"], "remote", "remote", "deny", "jwks_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := &recorder{}
			svc := newService(p, slog.New(slog.NewTextHandler(io.Discard, nil)), obs)
			headers := map[string]string{}
			if tt.auth != "" {
				headers["authorization"] = tt.auth
			}
			_, err := svc.Check(context.Background(), checkRequest("GET", tt.host, tt.path, headers))
			require.NoError(t, err)
			require.Len(t, obs.calls, 1)
			assert.Equal(t, [4]string{tt.route, tt.verifier, tt.decision, tt.reason}, obs.calls[0])
		})
	}
}

type recorder struct{ calls [][4]string }

func (r *recorder) Observe(_ context.Context, o authz.Outcome) {
	r.calls = append(r.calls, [4]string{o.Route, o.Verifier, o.Decision, string(o.Reason)})
}

// TestCheckLogsNoToken checks that the deny log line carries the reason and
// never the token.
func TestCheckLogsNoToken(t *testing.T) {
	p, tokens := testPolicy(t)
	var buf strings.Builder
	svc := newService(p, slog.New(slog.NewTextHandler(&buf, nil)), nil)
	for _, name := range []string{"expired", "untrusted", "impostor", "noscope", "opaque", "huge", "remote"} {
		req := checkRequest("GET", "mcp.example.com", "/mcp", map[string]string{"authorization": "Bearer " + tokens[name]})
		if name == "remote" {
			req = checkRequest("GET", "mcp.example.com", "/remote", map[string]string{"authorization": "Bearer " + tokens[name]})
		}
		_, err := svc.Check(context.Background(), req)
		require.NoError(t, err)
	}
	out := buf.String()
	for _, code := range []string{"token_expired", "issuer_untrusted", "signature_invalid", "scope_insufficient", "token_malformed", "token_too_large", "jwks_unavailable"} {
		assert.Contains(t, out, "code="+code)
	}
	for name, tok := range tokens {
		assert.NotContains(t, out, tok, "log holds token %s", name)
	}
}

func checkRequest(method, host, path string, headers map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Host: host, Path: path, Headers: headers,
		}},
	}}
}

// TestFixturesCoverEveryStatus guards the fixture set itself.
func TestFixturesCoverEveryStatus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "check", "*.json"))
	require.NoError(t, err)
	var seen []int
	for _, path := range files {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		var f fixture
		require.NoError(t, json.Unmarshal(data, &f), path)
		if !slices.Contains(seen, f.Want.Status) {
			seen = append(seen, f.Want.Status)
		}
	}
	slices.Sort(seen)
	assert.Equal(t, []int{0, 200, 204, 400, 401, 403, 503}, seen)
}

// newService is the Check service deciding with p.
func newService(p *authz.Policy, log *slog.Logger, obs authz.Observer) *Service {
	return NewService(authz.NewService(p, log, obs))
}
