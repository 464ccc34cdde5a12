package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/keys"
)

// get sends a GET and returns the response with its body read.
func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// TestProtectedResourceMetadata follows the RFC 9728 discovery a client
// makes after a 401: first by hand, then with the official MCP Go SDK's
// own discovery code, then through the SDK's whole OAuth flow against a
// minimal authorization server.
func TestProtectedResourceMetadata(t *testing.T) {
	var as authServer
	e := startEnv(t, envOptions{idp: &as})
	as.env.Store(e)
	wantDoc := `{"resource":"` + e.resource + `","authorization_servers":["` + e.issuer + `"],"scopes_supported":["mcp:read"],"bearer_methods_supported":["header"],"dpop_signing_alg_values_supported":["ES256","ES384","EdDSA","RS256","PS256"]}`

	// challenge returns the WWW-Authenticate of an unauthenticated request.
	challenge := func(t *testing.T) *http.Response {
		resp, _ := e.post(t, "/mcp", nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		return resp
	}

	t.Run("the resource_metadata URL of a 401 serves the document through Envoy", func(t *testing.T) {
		h := challenge(t).Header.Get("WWW-Authenticate")
		prefix, metadataURL, ok := strings.Cut(h, `resource_metadata="`)
		require.True(t, ok, "no resource_metadata in %q", h)
		require.Equal(t, `Bearer scope="mcp:read", `, prefix)
		metadataURL = strings.TrimSuffix(metadataURL, `"`)
		require.True(t, strings.HasPrefix(metadataURL, e.stack.EnvoyURL()+"/"), "%s is not on Envoy", metadataURL)

		resp, body := get(t, metadataURL)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		var doc struct {
			Resource string `json:"resource"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &doc))
		assert.Equal(t, e.resource, doc.Resource)
		assert.JSONEq(t, wantDoc, body)

		// The same document on tokengate's HTTP port.
		u, err := url.Parse(metadataURL)
		require.NoError(t, err)
		resp, direct := get(t, e.stack.TokengateHTTP()+u.Path)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		assert.JSONEq(t, wantDoc, direct)
	})

	t.Run("the MCP SDK's discovery accepts the document", func(t *testing.T) {
		challenges, err := oauthex.ParseWWWAuthenticate(challenge(t).Header.Values("WWW-Authenticate"))
		require.NoError(t, err)
		require.Len(t, challenges, 1)
		assert.Equal(t, "bearer", challenges[0].Scheme)
		metadataURL := challenges[0].Params["resource_metadata"]
		require.NotEmpty(t, metadataURL)

		// The resource URL the SDK checks the document against is the
		// MCP endpoint it was connecting to (see auth.AuthorizationCodeHandler).
		prm, err := oauthex.GetProtectedResourceMetadata(context.Background(), metadataURL, e.stack.EnvoyURL()+"/mcp", nil)
		require.NoError(t, err)
		assert.Equal(t, e.resource, prm.Resource)
		assert.Equal(t, []string{e.issuer}, prm.AuthorizationServers)
		assert.Equal(t, []string{"mcp:read"}, prm.ScopesSupported)
		assert.Equal(t, []string{"header"}, prm.BearerMethodsSupported)

		// And it would refuse a document for another resource.
		_, err = oauthex.GetProtectedResourceMetadata(context.Background(), metadataURL, e.stack.EnvoyURL()+"/other", nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), `got metadata resource "`+e.resource+`"`)
	})

	t.Run("the MCP SDK client authorizes itself from the 401 alone", func(t *testing.T) {
		handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
			PreregisteredClient:      &oauthex.ClientCredentials{ClientID: "e2e-client"},
			RedirectURL:              "http://127.0.0.1/callback",
			AuthorizationCodeFetcher: as.fetchCode,
		})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
		s, err := client.Connect(ctx, &mcp.StreamableClientTransport{
			Endpoint:     e.stack.EnvoyURL() + "/mcp",
			OAuthHandler: handler,
			MaxRetries:   -1,
		}, nil)
		require.NoError(t, err)
		defer s.Close()
		who := whoami(t, s)
		assert.Equal(t, "oauth-user", who["x-auth-sub"])
		assert.Equal(t, "mcp:read", who["x-auth-scopes"], "the SDK asks for the scopes_supported of the metadata")
		assert.Equal(t, "e2e-client", who["x-auth-client-id"])
		assert.Equal(t, int32(1), as.tokens.Load(), "one token, issued for the resource the metadata named")
	})
}

// authServer is a minimal OAuth authorization server on the IdP's
// httptest server (RFC 8414 metadata, authorization code with PKCE S256,
// RFC 8707 resource), enough for the MCP SDK's AuthorizationCodeHandler.
// It issues RS256 tokens with the IdP's "rs" key for the requested
// resource.
type authServer struct {
	env atomic.Pointer[env]
	// challenge, resource and scope of the one pending code.
	pending atomic.Pointer[[3]string]
	tokens  atomic.Int32
}

const authCode = "code-1"

func (a *authServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e := a.env.Load()
	if e == nil {
		http.NotFound(w, r)
		return
	}
	issuer := e.issuer
	switch r.URL.Path {
	case "/.well-known/oauth-authorization-server":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                issuer,
			"authorization_endpoint":                issuer + "/authorize",
			"token_endpoint":                        issuer + "/token",
			"code_challenge_methods_supported":      []string{"S256"},
			"token_endpoint_auth_methods_supported": []string{"none"},
			"response_types_supported":              []string{"code"},
		})
	case "/authorize":
		q := r.URL.Query()
		if q.Get("client_id") != "e2e-client" || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" {
			http.Error(w, "bad authorization request", http.StatusBadRequest)
			return
		}
		a.pending.Store(&[3]string{q.Get("code_challenge"), q.Get("resource"), q.Get("scope")})
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+authCode+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	case "/token":
		p := a.pending.Load()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if p == nil || r.PostFormValue("grant_type") != "authorization_code" || r.PostFormValue("code") != authCode ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != p[0] || r.PostFormValue("resource") != p[1] {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		tok, err := keys.Mint(keys.MintOptions{
			KeyFile: filepath.Join(e.keyDirs["rs"], keys.PrivateKeyFile), Alg: "RS256", Kid: "rs",
			Issuer: issuer, Audience: []string{p[1]}, Subject: "oauth-user", Scope: p[2], TTL: time.Hour,
			Claims: map[string]any{"client_id": "e2e-client"},
		})
		if err != nil {
			http.Error(w, "mint failed", http.StatusInternalServerError)
			return
		}
		a.tokens.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600, "scope": p[2]})
	default:
		http.NotFound(w, r)
	}
}

// fetchCode plays the user's browser: it follows the authorization URL to
// the redirect and returns the code and state from it.
func (a *authServer) fetchCode(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args.URL, nil)
	if err != nil {
		return nil, err
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return nil, errors.New("authorization endpoint answered " + resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return nil, err
	}
	return &auth.AuthorizationResult{Code: loc.Query().Get("code"), State: loc.Query().Get("state")}, nil
}
