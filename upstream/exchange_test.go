package upstream

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/reason"
)

const (
	testSecret   = "s3cret:with/odd chars"
	subjectToken = "client-token-abc"
	issuedToken  = "exchanged-token-xyz"
)

// idp is a token endpoint that records what it received.
type idp struct {
	srv    *httptest.Server
	calls  atomic.Int32
	mu     sync.Mutex
	forms  []url.Values
	auths  []string
	answer func(w http.ResponseWriter, r *http.Request)
}

func newIDP(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *idp {
	t.Helper()
	p := &idp{answer: answer}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		p.mu.Lock()
		p.forms = append(p.forms, form)
		p.auths = append(p.auths, r.Header.Get("Authorization"))
		p.mu.Unlock()
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "bad request shape", http.StatusTeapot)
			return
		}
		p.answer(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func issue(expiresIn int) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":%d}`, issuedToken, expiresIn)
	}
}

func answer(status int, body string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func newExchanger(t *testing.T, endpoint string, c *clock, mod func(*ExchangeOptions)) (*Exchanger, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	o := ExchangeOptions{
		Route: "mcp", TokenEndpoint: endpoint, ClientID: "tokengate", ClientSecret: testSecret,
		Audience: "backend", Scopes: []string{"backend:read", "backend:write"},
		Timeout: 2 * time.Second, Now: c.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}
	if mod != nil {
		mod(&o)
	}
	e, err := NewExchanger(o)
	require.NoError(t, err)
	return e, &logs
}

func exchange(e *Exchanger, token string) (string, error) {
	return e.Authorization(context.Background(), HashToken(token), Request{Token: token, Identity: alice})
}

// TestExchangeRequestShape checks the form fields and both client
// authentication methods.
func TestExchangeRequestShape(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("tokengate:"+url.QueryEscape(testSecret)))
	tests := []struct {
		auth      string
		wantAuth  string
		wantExtra url.Values
	}{
		{"basic", basic, url.Values{}},
		{"post", "", url.Values{"client_id": {"tokengate"}, "client_secret": {testSecret}}},
	}
	for _, tt := range tests {
		t.Run(tt.auth, func(t *testing.T) {
			p := newIDP(t, issue(300))
			e, _ := newExchanger(t, p.srv.URL, newClock(), func(o *ExchangeOptions) { o.ClientAuth = tt.auth })
			got, err := exchange(e, subjectToken)
			require.NoError(t, err)
			assert.Equal(t, "Bearer "+issuedToken, got)
			want := url.Values{
				"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
				"subject_token":      {subjectToken},
				"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
				"audience":           {"backend"},
				"scope":              {"backend:read backend:write"},
			}
			for k, v := range tt.wantExtra {
				want[k] = v
			}
			require.Len(t, p.forms, 1)
			assert.Equal(t, want, p.forms[0])
			assert.Equal(t, tt.wantAuth, p.auths[0])
		})
	}
}

// TestExchangeCache checks reuse until expires_in minus the margin, per
// token, and that a short expires_in is reused for half its length.
func TestExchangeCache(t *testing.T) {
	c := newClock()
	p := newIDP(t, issue(300))
	e, _ := newExchanger(t, p.srv.URL, c, nil)
	for range 3 {
		_, err := exchange(e, "a")
		require.NoError(t, err)
	}
	assert.Equal(t, int32(1), p.calls.Load(), "reused")
	_, err := exchange(e, "b")
	require.NoError(t, err)
	assert.Equal(t, int32(2), p.calls.Load(), "another token, another exchange")

	c.Advance(270*time.Second - time.Second)
	_, err = exchange(e, "a")
	require.NoError(t, err)
	assert.Equal(t, int32(2), p.calls.Load(), "still inside expires_in minus 30s")
	c.Advance(time.Second)
	_, err = exchange(e, "a")
	require.NoError(t, err)
	assert.Equal(t, int32(3), p.calls.Load(), "re-exchanged 30s before expiry")

	short := newIDP(t, issue(40))
	e2, _ := newExchanger(t, short.srv.URL, c, nil)
	_, _ = exchange(e2, "a")
	c.Advance(19 * time.Second)
	_, _ = exchange(e2, "a")
	assert.Equal(t, int32(1), short.calls.Load())
	c.Advance(time.Second)
	_, _ = exchange(e2, "a")
	assert.Equal(t, int32(2), short.calls.Load(), "40s token reused for 20s")

	none := newIDP(t, answer(200, `{"access_token":"x","token_type":"Bearer"}`))
	e3, _ := newExchanger(t, none.srv.URL, c, nil)
	_, _ = exchange(e3, "a")
	_, _ = exchange(e3, "a")
	assert.Equal(t, int32(2), none.calls.Load(), "no expires_in: not cached")

	// Never beyond the client token's exp.
	capped := newIDP(t, issue(3600))
	e4, _ := newExchanger(t, capped.srv.URL, c, nil)
	req := Request{Token: "a", Identity: alice, Expiry: c.Now().Add(10 * time.Second)}
	_, err = e4.Authorization(context.Background(), HashToken("a"), req)
	require.NoError(t, err)
	c.Advance(10 * time.Second)
	_, err = e4.Authorization(context.Background(), HashToken("a"), req)
	require.NoError(t, err)
	assert.Equal(t, int32(2), capped.calls.Load(), "cache entry ends with the client token")
}

// TestExchangeSingleFlight checks that 8 concurrent requests with one token
// make one exchange and all get its result.
func TestExchangeSingleFlight(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 16)
	p := newIDP(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		issue(300)(w, r)
	})
	e, _ := newExchanger(t, p.srv.URL, newClock(), nil)
	const n = 8
	var wg sync.WaitGroup
	results := make([]string, n)
	errs := make([]error, n)
	var started sync.WaitGroup
	started.Add(n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			results[i], errs[i] = exchange(e, subjectToken)
		}()
	}
	started.Wait()
	<-arrived // the one exchange is at the provider
	// Let the other goroutines reach the single-flight group: they either
	// join the call in flight or, if late, find the cached result.
	close(release)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, "Bearer "+issuedToken, results[i])
	}
	assert.Equal(t, int32(1), p.calls.Load())
}

// TestExchangeRefusals maps every refusal to ErrExchangeRefused.
func TestExchangeRefusals(t *testing.T) {
	for _, code := range []string{"invalid_grant", "invalid_target", "unauthorized_client", "invalid_request", "invalid_scope", "access_denied"} {
		for _, status := range []int{400, 403} {
			t.Run(fmt.Sprintf("%d %s", status, code), func(t *testing.T) {
				p := newIDP(t, answer(status, `{"error":"`+code+`","error_description":"no"}`))
				e, _ := newExchanger(t, p.srv.URL, newClock(), nil)
				got, err := exchange(e, subjectToken)
				require.ErrorIs(t, err, ErrExchangeRefused)
				assert.Empty(t, got)
				assert.False(t, IsUnavailable(err))
				assert.Equal(t, reason.TokenExchangeRefused, Code(err))
				_, _ = exchange(e, subjectToken)
				assert.Equal(t, int32(2), p.calls.Load(), "a refusal is not cached")
			})
		}
	}
}

// TestExchangeOutages maps every failure to reach a usable answer to
// ErrExchangeUnavailable, and checks that neither the client token, the
// secret nor an issued token appears in the error or the logs.
func TestExchangeOutages(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	tests := []struct {
		name     string
		handler  func(w http.ResponseWriter, r *http.Request)
		endpoint string
		wantLog  string
	}{
		{name: "unreachable", endpoint: closedURL, wantLog: "token endpoint unreachable"},
		{name: "timeout", handler: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, wantLog: "token endpoint unreachable"},
		{name: "500", handler: answer(500, `{"error":"server_error"}`), wantLog: "answered 500"},
		{name: "503", handler: answer(503, `oops`), wantLog: "answered 503"},
		{name: "401 client credentials", handler: answer(401, `{"error":"invalid_client"}`), wantLog: "rejected tokengate's own client credentials"},
		{name: "400 invalid_client", handler: answer(400, `{"error":"invalid_client"}`), wantLog: "rejected tokengate's own client credentials"},
		{name: "400 unsupported_grant_type", handler: answer(400, `{"error":"unsupported_grant_type"}`), wantLog: "with unsupported_grant_type"},
		{name: "400 garbage", handler: answer(400, `<html>`), wantLog: "with an unknown error"},
		{name: "200 garbage", handler: answer(200, `<html>`), wantLog: "unparseable JSON"},
		{name: "200 without access_token", handler: answer(200, `{"token_type":"Bearer","expires_in":60}`), wantLog: "without a usable access_token"},
		{name: "200 token with a newline", handler: answer(200, `{"access_token":"a\nb","token_type":"Bearer"}`), wantLog: "without a usable access_token"},
		{name: "200 not bearer", handler: answer(200, `{"access_token":"`+issuedToken+`","token_type":"DPoP","expires_in":60}`), wantLog: "not a bearer token"},
		{name: "200 too large", handler: answer(200, `{"access_token":"`+strings.Repeat("a", 1<<20)+`"}`)},
		{name: "302 redirect", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:1/token", http.StatusFound)
		}, wantLog: "answered 302"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			endpoint := tt.endpoint
			if tt.handler != nil {
				endpoint = newIDP(t, tt.handler).srv.URL
			}
			e, logs := newExchanger(t, endpoint, newClock(), func(o *ExchangeOptions) {
				o.Timeout = 200 * time.Millisecond
			})
			got, err := exchange(e, subjectToken)
			require.ErrorIs(t, err, ErrExchangeUnavailable)
			assert.Empty(t, got)
			assert.True(t, IsUnavailable(err))
			assert.Equal(t, reason.TokenExchangeUnavailable, Code(err))
			assert.Contains(t, logs.String(), tt.wantLog)
			for _, secret := range []string{subjectToken, testSecret, url.QueryEscape(testSecret), issuedToken} {
				assert.NotContains(t, err.Error(), secret)
				assert.NotContains(t, logs.String(), secret)
			}
		})
	}
}

// TestExchangeCallerGivesUp checks that a caller whose context ends gets an
// unavailable error at once while the exchange goes on for the others.
func TestExchangeCallerGivesUp(t *testing.T) {
	release := make(chan struct{})
	p := newIDP(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		issue(300)(w, r)
	})
	e, _ := newExchanger(t, p.srv.URL, newClock(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.Authorization(ctx, HashToken("a"), Request{Token: "a"})
	require.ErrorIs(t, err, ErrExchangeUnavailable)
	close(release)
	got, err := exchange(e, "a")
	require.NoError(t, err)
	assert.Equal(t, "Bearer "+issuedToken, got)
	assert.Equal(t, int32(1), p.calls.Load(), "the abandoned exchange completed and was shared or cached")
}

// TestExchangeDiscovery finds the token endpoint in the issuer's metadata
// (OpenID Connect first, then RFC 8414), once.
func TestExchangeDiscovery(t *testing.T) {
	for _, doc := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		t.Run(doc, func(t *testing.T) {
			var metadata atomic.Int32
			mux := http.NewServeMux()
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			issuer := srv.URL
			mux.HandleFunc(doc, func(w http.ResponseWriter, r *http.Request) {
				metadata.Add(1)
				fmt.Fprintf(w, `{"issuer":%q,"token_endpoint":%q}`, issuer, issuer+"/token")
			})
			mux.HandleFunc("/token", issue(300))
			e, _ := newExchanger(t, "", newClock(), func(o *ExchangeOptions) { o.Issuer = issuer })
			for _, tok := range []string{"a", "b"} {
				got, err := exchange(e, tok)
				require.NoError(t, err)
				assert.Equal(t, "Bearer "+issuedToken, got)
			}
			assert.Equal(t, int32(1), metadata.Load(), "discovered once")
		})
	}
}

// TestExchangeDiscoveryFailure is unavailable, retried only after a pause,
// and refuses metadata naming another issuer.
func TestExchangeDiscoveryFailure(t *testing.T) {
	var metadata atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		metadata.Add(1)
		fmt.Fprint(w, `{"issuer":"https://evil.example","token_endpoint":"https://evil.example/token"}`)
	}))
	t.Cleanup(srv.Close)
	c := newClock()
	e, _ := newExchanger(t, "", c, func(o *ExchangeOptions) { o.Issuer = srv.URL })
	_, err := exchange(e, "a")
	require.ErrorIs(t, err, ErrExchangeUnavailable)
	assert.Equal(t, int32(2), metadata.Load(), "both metadata documents tried")
	_, err = exchange(e, "a")
	require.ErrorIs(t, err, ErrExchangeUnavailable)
	assert.Equal(t, int32(2), metadata.Load(), "not refetched at once")
	c.Advance(discoveryRetry)
	_, _ = exchange(e, "a")
	assert.Equal(t, int32(4), metadata.Load(), "refetched after the pause")
}

// TestNewExchangerErrors checks option validation.
func TestNewExchangerErrors(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*ExchangeOptions)
		want string
	}{
		{"no client id", func(o *ExchangeOptions) { o.ClientID = "" }, "client_id: is required"},
		{"no secret", func(o *ExchangeOptions) { o.ClientSecret = "" }, "client_secret: is required"},
		{"no audience", func(o *ExchangeOptions) { o.Audience = "" }, "audience: is required"},
		{"http endpoint", func(o *ExchangeOptions) { o.TokenEndpoint = "http://idp.example/token" }, "token_endpoint: must be an https URL"},
		{"nothing to discover from", func(o *ExchangeOptions) { o.TokenEndpoint = "" }, "token_endpoint: is required"},
		{"client auth", func(o *ExchangeOptions) { o.ClientAuth = "private_key_jwt" }, "client_auth: must be basic or post"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ExchangeOptions{TokenEndpoint: "https://idp.example/token", ClientID: "c", ClientSecret: testSecret, Audience: "a"}
			tt.mod(&o)
			_, err := NewExchanger(o)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tt.want), "got %q", err.Error())
			assert.NotContains(t, err.Error(), testSecret)
		})
	}
}
