package verify_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/verify"
)

const (
	introToken    = "opaque-token-Zm9vYmFy"
	introClientID = "tokengate"
	introSecret   = "s3cr3t:with%special+chars/="
)

// introT0 is the fixed clock of the introspection tests.
var introT0 = time.Unix(1_700_000_000, 0)

// introClock is a settable clock for cache-expiry tests.
type introClock struct{ ns atomic.Int64 }

func newIntroClock(t time.Time) *introClock {
	c := &introClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *introClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *introClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// introIdP is a real introspection endpoint whose answer a test can change.
type introIdP struct {
	srv      *httptest.Server
	requests atomic.Int64
	mu       sync.Mutex
	status   int
	body     string
	// gate, if set, blocks each request until it is closed.
	gate    chan struct{}
	entered chan struct{}
}

func newIntroIdP(t *testing.T, status int, body string) *introIdP {
	t.Helper()
	return newIntroIdPWith(t, status, body, nil)
}

// newIntroIdPWith is newIntroIdP with configure applied to the server
// before it starts.
func newIntroIdPWith(t *testing.T, status int, body string, configure func(*http.Server)) *introIdP {
	t.Helper()
	p := &introIdP{status: status, body: body, entered: make(chan struct{}, 100)}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		p.entered <- struct{}{}
		p.mu.Lock()
		gate, status, body := p.gate, p.status, p.body
		p.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	if configure != nil {
		configure(p.srv.Config)
	}
	p.srv.Start()
	t.Cleanup(p.srv.Close)
	return p
}

func (p *introIdP) set(status int, body string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status, p.body = status, body
}

// block makes requests wait until the returned release is called (also at
// cleanup, before the server closes).
func (p *introIdP) block(t *testing.T) (release func()) {
	gate := make(chan struct{})
	p.mu.Lock()
	p.gate = gate
	p.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return release
}

// introJSON renders an introspection response.
func introJSON(t *testing.T, m map[string]any) string {
	t.Helper()
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return string(b)
}

func activeResponse(t *testing.T, extra map[string]any) string {
	m := map[string]any{
		"active":    true,
		"sub":       "alice",
		"client_id": "mcp-client",
		"scope":     "mcp:read mcp:write",
		"exp":       introT0.Add(time.Hour).Unix(),
		"email":     "alice@example.com",
	}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return introJSON(t, m)
}

func newIntro(t *testing.T, p *introIdP, mod func(*verify.IntrospectionOptions)) *verify.Introspection {
	t.Helper()
	o := verify.IntrospectionOptions{
		Name:         "legacy",
		URL:          p.srv.URL + "/introspect",
		ClientID:     introClientID,
		ClientSecret: introSecret,
		ClockSkew:    30 * time.Second,
		Now:          func() time.Time { return introT0 },
		Logger:       slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
	}
	if mod != nil {
		mod(&o)
	}
	v, err := verify.NewIntrospection(o)
	require.NoError(t, err)
	return v
}

func TestIntrospectionVerify(t *testing.T) {
	twoMiB := `{"active":true,"pad":"` + strings.Repeat("x", 2<<20) + `"}`
	tests := []struct {
		name      string
		status    int
		body      string
		issuer    string   // verifier's expected iss
		audiences []string // verifier's own audiences
		routeAud  []string // audiences the route passes
		want      error
		wantID    *verify.Identity
	}{
		{name: "active", status: 200, body: activeResponse(t, nil),
			wantID: &verify.Identity{Verifier: "legacy", Subject: "alice", ClientID: "mcp-client", Scopes: []string{"mcp:read", "mcp:write"}}},
		{name: "active without exp", status: 200, body: activeResponse(t, map[string]any{"exp": nil}),
			wantID: &verify.Identity{Verifier: "legacy", Subject: "alice", ClientID: "mcp-client", Scopes: []string{"mcp:read", "mcp:write"}}},
		{name: "inactive", status: 200, body: `{"active":false}`, want: verify.ErrTokenInactive},
		{name: "active as string", status: 200, body: activeResponse(t, map[string]any{"active": "true"}), want: verify.ErrTokenInactive},
		{name: "active as number", status: 200, body: activeResponse(t, map[string]any{"active": 1}), want: verify.ErrTokenInactive},
		{name: "active missing", status: 200, body: activeResponse(t, map[string]any{"active": nil}), want: verify.ErrTokenInactive},
		{name: "JSON null", status: 200, body: `null`, want: verify.ErrIntrospectionUnavailable},
		{name: "expired", status: 200, body: activeResponse(t, map[string]any{"exp": introT0.Add(-time.Minute).Unix()}), want: verify.ErrTokenExpired},
		{name: "expired within skew", status: 200, body: activeResponse(t, map[string]any{"exp": introT0.Add(-10 * time.Second).Unix()}),
			wantID: &verify.Identity{Verifier: "legacy", Subject: "alice", ClientID: "mcp-client", Scopes: []string{"mcp:read", "mcp:write"}}},
		{name: "not yet valid", status: 200, body: activeResponse(t, map[string]any{"nbf": introT0.Add(time.Minute).Unix()}), want: verify.ErrTokenNotYetValid},
		{name: "issuer matches", status: 200, body: activeResponse(t, map[string]any{"iss": "https://idp.example"}), issuer: "https://idp.example",
			wantID: &verify.Identity{Verifier: "legacy", Subject: "alice", Issuer: "https://idp.example", ClientID: "mcp-client", Scopes: []string{"mcp:read", "mcp:write"}}},
		{name: "issuer mismatch", status: 200, body: activeResponse(t, map[string]any{"iss": "https://evil.example"}), issuer: "https://idp.example", want: verify.ErrIssuerUntrusted},
		{name: "issuer missing", status: 200, body: activeResponse(t, nil), issuer: "https://idp.example", want: verify.ErrIssuerUntrusted},
		{name: "aud array contains verifier audience", status: 200, body: activeResponse(t, map[string]any{"aud": []string{"other", "api://mcp"}}), audiences: []string{"api://mcp"},
			wantID: &verify.Identity{Verifier: "legacy", Subject: "alice", ClientID: "mcp-client", Scopes: []string{"mcp:read", "mcp:write"}}},
		{name: "aud mismatch", status: 200, body: activeResponse(t, map[string]any{"aud": "api://other"}), audiences: []string{"api://mcp"}, want: verify.ErrAudienceMismatch},
		{name: "verifier audiences win over route", status: 200, body: activeResponse(t, map[string]any{"aud": "https://mcp.example.com/mcp"}), audiences: []string{"api://mcp"}, routeAud: []string{"https://mcp.example.com/mcp"}, want: verify.ErrAudienceMismatch},
		{name: "aud missing, verifier audiences", status: 200, body: activeResponse(t, nil), audiences: []string{"api://mcp"}, want: verify.ErrAudienceMismatch},
		{name: "aud missing, route audiences only", status: 200, body: activeResponse(t, nil), routeAud: []string{"https://mcp.example.com/mcp"},
			wantID: &verify.Identity{Verifier: "legacy", Subject: "alice", ClientID: "mcp-client", Scopes: []string{"mcp:read", "mcp:write"}}},
		{name: "aud mismatch with route audiences", status: 200, body: activeResponse(t, map[string]any{"aud": "api://other"}), routeAud: []string{"https://mcp.example.com/mcp"}, want: verify.ErrAudienceMismatch},
		{name: "aud string matches route audience", status: 200, body: activeResponse(t, map[string]any{"aud": "https://mcp.example.com/mcp"}), routeAud: []string{"https://mcp.example.com/mcp"},
			wantID: &verify.Identity{Verifier: "legacy", Subject: "alice", ClientID: "mcp-client", Scopes: []string{"mcp:read", "mcp:write"}}},
		{name: "HTTP 500", status: 500, body: `{"error":"server_error"}`, want: verify.ErrIntrospectionUnavailable},
		{name: "HTTP 401 (bad client credentials)", status: 401, body: `{"error":"invalid_client"}`, want: verify.ErrIntrospectionUnavailable},
		{name: "malformed JSON", status: 200, body: `{"active":true,`, want: verify.ErrIntrospectionUnavailable},
		{name: "JSON array", status: 200, body: `[{"active":true}]`, want: verify.ErrIntrospectionUnavailable},
		{name: "active with wrongly typed exp", status: 200, body: activeResponse(t, map[string]any{"exp": "tomorrow"}), want: verify.ErrIntrospectionUnavailable},
		{name: "2 MiB body", status: 200, body: twoMiB, want: verify.ErrIntrospectionUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newIntroIdP(t, tc.status, tc.body)
			var logs bytes.Buffer
			v := newIntro(t, p, func(o *verify.IntrospectionOptions) {
				o.Issuer = tc.issuer
				o.Audiences = tc.audiences
				o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			id, err := v.Verify(context.Background(), verify.ParseToken(introToken), tc.routeAud)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				assert.Nil(t, id)
				assert.Equal(t, errors.Is(tc.want, verify.ErrIntrospectionUnavailable), verify.IsUnavailable(err))
				assert.NotContains(t, err.Error(), introToken)
				assert.NotContains(t, err.Error(), introSecret)
			} else {
				require.NoError(t, err)
				payload := id.Payload
				id.Payload = nil
				assert.Equal(t, tc.wantID, id)
				// The raw response is the payload, so claim_headers work.
				var claims map[string]any
				require.NoError(t, json.Unmarshal(payload, &claims))
				assert.Equal(t, "alice@example.com", claims["email"])
			}
			assert.NotContains(t, logs.String(), introToken)
			assert.NotContains(t, logs.String(), introSecret)
			assert.NotContains(t, logs.String(), url.QueryEscape(introSecret))
			assert.Equal(t, int64(1), p.requests.Load())
		})
	}
}

func TestIntrospectionTimeout(t *testing.T) {
	p := newIntroIdP(t, 200, activeResponse(t, nil))
	p.block(t) // never released before the client gives up
	v := newIntro(t, p, func(o *verify.IntrospectionOptions) { o.Timeout = 50 * time.Millisecond })
	_, err := v.Verify(context.Background(), verify.ParseToken(introToken), nil)
	require.ErrorIs(t, err, verify.ErrIntrospectionUnavailable)
	assert.True(t, verify.IsUnavailable(err))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// TestIntrospectionClientAuth checks on the server side that the request
// is what RFC 7662 section 2.1 and RFC 6749 section 2.3.1 prescribe.
func TestIntrospectionClientAuth(t *testing.T) {
	const id = "token:gate%1"
	const secret = "p@ss:w%rd+/=&x y"
	tests := []struct {
		auth string
		// wantAuthorization is the exact header; "" means none.
		wantAuthorization string
		wantForm          url.Values
	}{
		{
			auth: "basic",
			// RFC 6749 2.3.1: form-urlencode each part, then Basic.
			wantAuthorization: "Basic " + base64.StdEncoding.EncodeToString([]byte("token%3Agate%251:p%40ss%3Aw%25rd%2B%2F%3D%26x+y")),
			wantForm:          url.Values{"token": {introToken}, "token_type_hint": {"access_token"}},
		},
		{auth: "", wantAuthorization: "Basic " + base64.StdEncoding.EncodeToString([]byte("token%3Agate%251:p%40ss%3Aw%25rd%2B%2F%3D%26x+y")),
			wantForm: url.Values{"token": {introToken}, "token_type_hint": {"access_token"}}},
		{
			auth:     "post",
			wantForm: url.Values{"token": {introToken}, "token_type_hint": {"access_token"}, "client_id": {id}, "client_secret": {secret}},
		},
	}
	for _, tc := range tests {
		t.Run("auth="+tc.auth, func(t *testing.T) {
			type seen struct {
				method, contentType, authorization, user, pass string
				basicOK                                        bool
				form                                           url.Values
				query                                          string
			}
			got := make(chan seen, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := seen{method: r.Method, contentType: r.Header.Get("Content-Type"), authorization: r.Header.Get("Authorization"), query: r.URL.RawQuery}
				user, pass, ok := r.BasicAuth()
				s.basicOK = ok
				s.user, _ = url.QueryUnescape(user)
				s.pass, _ = url.QueryUnescape(pass)
				_ = r.ParseForm()
				s.form = r.PostForm
				got <- s
				_, _ = w.Write([]byte(`{"active":true,"sub":"alice"}`))
			}))
			t.Cleanup(srv.Close)
			v, err := verify.NewIntrospection(verify.IntrospectionOptions{
				Name: "legacy", URL: srv.URL, ClientID: id, ClientSecret: secret, ClientAuth: tc.auth,
				Now: func() time.Time { return introT0 },
			})
			require.NoError(t, err)
			_, err = v.Verify(context.Background(), verify.ParseToken(introToken), nil)
			require.NoError(t, err)
			s := <-got
			assert.Equal(t, http.MethodPost, s.method)
			assert.Equal(t, "application/x-www-form-urlencoded", s.contentType)
			assert.Empty(t, s.query, "nothing travels in the URL")
			assert.Equal(t, tc.wantAuthorization, s.authorization)
			assert.Equal(t, tc.wantForm, s.form)
			if tc.wantAuthorization != "" {
				require.True(t, s.basicOK)
				assert.Equal(t, id, s.user)
				assert.Equal(t, secret, s.pass)
			}
		})
	}
}

func TestIntrospectionCache(t *testing.T) {
	t.Run("second verification is served from the cache", func(t *testing.T) {
		p := newIntroIdP(t, 200, activeResponse(t, nil))
		var results []string
		v := newIntro(t, p, func(o *verify.IntrospectionOptions) { o.OnCache = func(r string) { results = append(results, r) } })
		first, err := v.Verify(context.Background(), verify.ParseToken(introToken), nil)
		require.NoError(t, err)
		second, err := v.Verify(context.Background(), verify.ParseToken(introToken), nil)
		require.NoError(t, err)
		assert.Equal(t, first, second)
		assert.Equal(t, int64(1), p.requests.Load())
		assert.Equal(t, []string{"miss", "hit"}, results)
	})

	t.Run("entry expires at the token's exp", func(t *testing.T) {
		clock := newIntroClock(introT0)
		p := newIntroIdP(t, 200, activeResponse(t, map[string]any{"exp": introT0.Add(10 * time.Second).Unix()}))
		v := newIntro(t, p, func(o *verify.IntrospectionOptions) {
			o.Now, o.CacheTTL, o.ClockSkew = clock.Now, time.Minute, 0
		})
		_, err := v.Verify(context.Background(), verify.ParseToken(introToken), nil)
		require.NoError(t, err)
		clock.Advance(10*time.Second - time.Nanosecond)
		_, err = v.Verify(context.Background(), verify.ParseToken(introToken), nil)
		require.NoError(t, err)
		assert.Equal(t, int64(1), p.requests.Load(), "still cached just before exp")
		clock.Advance(time.Nanosecond)
		_, err = v.Verify(context.Background(), verify.ParseToken(introToken), nil)
		require.ErrorIs(t, err, verify.ErrTokenExpired)
		assert.Equal(t, int64(2), p.requests.Load(), "asked again at exp")
	})

	t.Run("entry expires after cache_ttl", func(t *testing.T) {
		clock := newIntroClock(introT0)
		p := newIntroIdP(t, 200, activeResponse(t, nil)) // exp in an hour
		v := newIntro(t, p, func(o *verify.IntrospectionOptions) { o.Now, o.CacheTTL = clock.Now, time.Minute })
		for range 2 {
			_, err := v.Verify(context.Background(), verify.ParseToken(introToken), nil)
			require.NoError(t, err)
			clock.Advance(time.Minute - time.Second)
		}
		assert.Equal(t, int64(1), p.requests.Load())
		clock.Advance(time.Second)
		_, err := v.Verify(context.Background(), verify.ParseToken(introToken), nil)
		require.NoError(t, err)
		assert.Equal(t, int64(2), p.requests.Load())
	})

	t.Run("cached identity is served while the IdP is down", func(t *testing.T) {
		clock := newIntroClock(introT0)
		p := newIntroIdP(t, 200, activeResponse(t, nil))
		v := newIntro(t, p, func(o *verify.IntrospectionOptions) { o.Now, o.CacheTTL = clock.Now, time.Minute })
		want, err := v.Verify(context.Background(), verify.ParseToken(introToken), nil)
		require.NoError(t, err)
		p.srv.Close()
		clock.Advance(30 * time.Second)
		got, err := v.Verify(context.Background(), verify.ParseToken(introToken), nil)
		require.NoError(t, err)
		assert.Equal(t, want, got)
		_, err = v.Verify(context.Background(), verify.ParseToken("another-token"), nil)
		require.ErrorIs(t, err, verify.ErrIntrospectionUnavailable, "an uncached token cannot be judged")
		clock.Advance(30 * time.Second)
		_, err = v.Verify(context.Background(), verify.ParseToken(introToken), nil)
		require.ErrorIs(t, err, verify.ErrIntrospectionUnavailable, "the entry is not served beyond its TTL")
	})

	t.Run("inactive results are not cached", func(t *testing.T) {
		p := newIntroIdP(t, 200, `{"active":false}`)
		v := newIntro(t, p, nil)
		for range 2 {
			_, err := v.Verify(context.Background(), verify.ParseToken(introToken), nil)
			require.ErrorIs(t, err, verify.ErrTokenInactive)
		}
		assert.Equal(t, int64(2), p.requests.Load())
		p.set(200, activeResponse(t, nil))
		_, err := v.Verify(context.Background(), verify.ParseToken(introToken), nil)
		require.NoError(t, err)
	})

	t.Run("failures are not cached", func(t *testing.T) {
		p := newIntroIdP(t, 503, ``)
		v := newIntro(t, p, nil)
		_, err := v.Verify(context.Background(), verify.ParseToken(introToken), nil)
		require.ErrorIs(t, err, verify.ErrIntrospectionUnavailable)
		p.set(200, activeResponse(t, nil))
		_, err = v.Verify(context.Background(), verify.ParseToken(introToken), nil)
		require.NoError(t, err)
		assert.Equal(t, int64(2), p.requests.Load())
	})

	t.Run("audiences are checked on every hit", func(t *testing.T) {
		p := newIntroIdP(t, 200, activeResponse(t, map[string]any{"aud": "https://a.example"}))
		v := newIntro(t, p, nil)
		_, err := v.Verify(context.Background(), verify.ParseToken(introToken), []string{"https://a.example"})
		require.NoError(t, err)
		_, err = v.Verify(context.Background(), verify.ParseToken(introToken), []string{"https://b.example"})
		require.ErrorIs(t, err, verify.ErrAudienceMismatch)
		assert.Equal(t, int64(1), p.requests.Load())
	})

	t.Run("LRU bound evicts the least recently used", func(t *testing.T) {
		p := newIntroIdP(t, 200, activeResponse(t, nil))
		v := newIntro(t, p, func(o *verify.IntrospectionOptions) { o.CacheSize = 2 })
		verifyTok := func(tok string) {
			t.Helper()
			_, err := v.Verify(context.Background(), verify.ParseToken(tok), nil)
			require.NoError(t, err)
		}
		verifyTok("a")
		verifyTok("b")
		verifyTok("a") // hit; b is now the least recently used
		verifyTok("c") // evicts b
		assert.Equal(t, int64(3), p.requests.Load())
		verifyTok("a")
		verifyTok("c")
		assert.Equal(t, int64(3), p.requests.Load(), "a and c stay cached")
		verifyTok("b")
		assert.Equal(t, int64(4), p.requests.Load(), "b was evicted")
	})
}

func TestIntrospectionSingleFlight(t *testing.T) {
	t.Run("concurrent verifications share one request", func(t *testing.T) {
		p := newIntroIdP(t, 200, activeResponse(t, nil))
		release := p.block(t)
		var misses atomic.Int64
		v := newIntro(t, p, func(o *verify.IntrospectionOptions) {
			o.OnCache = func(r string) {
				if r == "miss" {
					misses.Add(1)
				}
			}
		})
		const n = 10
		var wg sync.WaitGroup
		ids := make([]*verify.Identity, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				ids[i], errs[i] = v.Verify(context.Background(), verify.ParseToken(introToken), nil)
			})
		}
		<-p.entered // the request is in flight and blocked
		for misses.Load() < n {
			runtime.Gosched()
		}
		release()
		wg.Wait()
		for i := range n {
			require.NoError(t, errs[i])
			assert.Equal(t, "alice", ids[i].Subject)
		}
		assert.Equal(t, int64(1), p.requests.Load())
	})

	t.Run("a caller's cancellation does not cancel the shared request", func(t *testing.T) {
		p := newIntroIdP(t, 200, activeResponse(t, nil))
		release := p.block(t)
		v := newIntro(t, p, nil)
		ctx, cancel := context.WithCancel(context.Background())
		leaderErr := make(chan error, 1)
		go func() {
			_, err := v.Verify(ctx, verify.ParseToken(introToken), nil)
			leaderErr <- err
		}()
		<-p.entered
		followerDone := make(chan error, 1)
		go func() {
			_, err := v.Verify(context.Background(), verify.ParseToken(introToken), nil)
			followerDone <- err
		}()
		cancel()
		err := <-leaderErr
		require.ErrorIs(t, err, verify.ErrIntrospectionUnavailable)
		require.ErrorIs(t, err, context.Canceled)
		release()
		require.NoError(t, <-followerDone)
		assert.Equal(t, int64(1), p.requests.Load())
	})
}

func TestNewIntrospectionErrors(t *testing.T) {
	base := verify.IntrospectionOptions{Name: "legacy", URL: "https://idp.example/introspect", ClientID: "tokengate", ClientSecret: introSecret}
	tests := []struct {
		name    string
		mod     func(*verify.IntrospectionOptions)
		wantKey string
	}{
		{name: "http on a remote host", mod: func(o *verify.IntrospectionOptions) { o.URL = "http://idp.example/introspect" }, wantKey: "introspection_url: "},
		{name: "relative URL", mod: func(o *verify.IntrospectionOptions) { o.URL = "/introspect" }, wantKey: "introspection_url: "},
		{name: "no client id", mod: func(o *verify.IntrospectionOptions) { o.ClientID = "" }, wantKey: "client_id: "},
		{name: "no secret", mod: func(o *verify.IntrospectionOptions) { o.ClientSecret = "" }, wantKey: "client_secret: "},
		{name: "unknown client auth", mod: func(o *verify.IntrospectionOptions) { o.ClientAuth = "private_key_jwt" }, wantKey: "client_auth: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.mod(&o)
			_, err := verify.NewIntrospection(o)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tc.wantKey), err.Error())
			var oe *verify.OptionError
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, strings.TrimSuffix(tc.wantKey, ": "), oe.Key)
			assert.NotContains(t, err.Error(), introSecret)
		})
	}
	t.Run("http allowed when insecure is allowed", func(t *testing.T) {
		o := base
		o.URL, o.AllowInsecureHTTP = "http://idp.example/introspect", true
		v, err := verify.NewIntrospection(o)
		require.NoError(t, err)
		assert.Equal(t, verify.KindIntrospection, v.Kind())
		assert.Equal(t, "", v.Issuer())
		assert.Equal(t, "legacy", v.Name())
		assert.True(t, v.Ready())
	})
}

func BenchmarkVerifyIntrospectionCached(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"active":true,"sub":"alice","scope":"mcp:read","aud":"https://mcp.example.com/mcp","exp":%d}`, introT0.Add(time.Hour).Unix())
	}))
	b.Cleanup(srv.Close)
	v, err := verify.NewIntrospection(verify.IntrospectionOptions{
		Name: "legacy", URL: srv.URL, ClientID: introClientID, ClientSecret: introSecret,
		Now: func() time.Time { return introT0 },
	})
	require.NoError(b, err)
	tok := verify.ParseToken(strings.Repeat("t", 40) + introToken)
	aud := []string{"https://mcp.example.com/mcp"}
	_, err = v.Verify(context.Background(), tok, aud)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(context.Background(), tok, aud); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIntrospectionKeepsConnections: introspections that run at the same
// time each need a connection, and the next wave reuses them all rather
// than dialling again (net/http keeps only 2 idle connections per host
// unless told otherwise).
func TestIntrospectionKeepsConnections(t *testing.T) {
	const concurrent, waves = 8, 3
	var dials atomic.Int64
	p := newIntroIdPWith(t, http.StatusOK, activeResponse(t, nil), func(s *http.Server) {
		s.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				dials.Add(1)
			}
		}
	})
	v := newIntro(t, p, nil)
	for w := range waves {
		release := p.block(t)
		var wg sync.WaitGroup
		for i := range concurrent {
			wg.Go(func() {
				tok := verify.ParseToken(fmt.Sprintf("opaque-%d-%d", w, i)) // distinct: no cache, no sharing
				_, err := v.Verify(context.Background(), tok, nil)
				assert.NoError(t, err)
			})
		}
		for range concurrent { // every request of the wave is at the IdP at once
			<-p.entered
		}
		release()
		wg.Wait()
	}
	assert.Equal(t, int64(concurrent*waves), p.requests.Load())
	assert.Equal(t, int64(concurrent), dials.Load(), "connections dialled: the first wave's, kept for the next waves")
}
