package verify_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/verify"
)

// jwksServer is a real HTTP server standing in for an identity provider's
// JWKS endpoint. It counts requests, and its behaviour can be swapped while
// it runs.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64

	mu      sync.Mutex
	handler http.HandlerFunc
}

// newJWKSServer serves body as the JWKS until told otherwise, and closes
// when the test ends.
func newJWKSServer(t testing.TB, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.serve(body)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		h := s.handler
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// serve makes the server answer 200 with body.
func (s *jwksServer) serve(body []byte) {
	s.set(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

// set replaces the server's behaviour.
func (s *jwksServer) set(h http.HandlerFunc) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

// fetchLog records what RemoteOptions.OnFetch was told.
type fetchLog struct {
	mu      sync.Mutex
	results []string
	keys    []int
}

func (l *fetchLog) record(_, result string, keys int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.results = append(l.results, result)
	l.keys = append(l.keys, keys)
}

func (l *fetchLog) snapshot() ([]string, []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.results...), append([]int(nil), l.keys...)
}

func (l *fetchLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.results)
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// remoteVerifier is a JWT verifier on srv's JWKS.
func remoteVerifier(t testing.TB, srv *jwksServer, ro verify.RemoteOptions) *verify.JWT {
	t.Helper()
	return newVerifier(t, verify.JWTOptions{Keys: verify.RemoteJWKS(srv.URL), Remote: ro})
}

// TestRemoteLoadsAtStart: nothing is fetched before Start; Start loads the
// keys once and the verifier becomes ready.
func TestRemoteLoadsAtStart(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, "ES256", "k1")
	srv := newJWKSServer(t, jwksOf(t, k))
	var log fetchLog
	v := remoteVerifier(t, srv, verify.RemoteOptions{MinRefetchInterval: time.Hour, OnFetch: log.record})

	require.False(t, v.Ready())
	require.Zero(t, srv.hits.Load())

	startVerifier(t, v)
	eventually(t, "keys loaded", func() bool { return v.Ready() && log.len() == 1 })
	require.EqualValues(t, 1, srv.hits.Load())
	results, keys := log.snapshot()
	require.Equal(t, []string{"success"}, results)
	require.Equal(t, []int{1}, keys)

	_, err := check(v, k.mint(t, nil, claims(nil)))
	require.NoError(t, err)
	require.EqualValues(t, 1, srv.hits.Load(), "a known kid costs no fetch")
}

// TestRemoteRotation: a new key with a new kid verifies without a restart
// (one early refetch); a second unknown kid within MinRefetchInterval costs
// no fetch and is key_unknown.
func TestRemoteRotation(t *testing.T) {
	t.Parallel()
	oldKey := newTestKey(t, "ES256", "rot-old")
	newKey := newTestKey(t, "ES256", "rot-new")
	strayKey := newTestKey(t, "ES256", "rot-stray")
	srv := newJWKSServer(t, jwksOf(t, oldKey))
	v := remoteVerifier(t, srv, verify.RemoteOptions{MinRefetchInterval: time.Hour})
	startVerifier(t, v)
	eventually(t, "keys loaded", v.Ready)

	steps := []struct {
		name     string
		key      *testKey
		want     error
		wantHits int64
	}{
		{"old kid before rotation", oldKey, nil, 1},
		{"new kid after rotation: early refetch", newKey, nil, 2},
		{"unknown kid within the interval: no fetch", strayKey, verify.ErrKeyUnknown, 2},
		{"another unknown kid: still no fetch", &testKey{alg: "ES256", kid: "rot-other", priv: strayKey.priv}, verify.ErrKeyUnknown, 2},
		{"old kid still served", oldKey, nil, 2},
		{"new kid again", newKey, nil, 2},
	}
	for i, st := range steps {
		if i == 1 {
			srv.serve(jwksOf(t, oldKey, newKey))
		}
		_, err := check(v, st.key.mint(t, nil, claims(nil)))
		requireCode(t, st.want, err)
		require.Equal(t, st.wantHits, srv.hits.Load(), st.name)
	}
}

// TestRemoteOutage: with the endpoint down, cached keys keep verifying; an
// unknown kid, whose refetch fails, cannot be decided: jwks_unavailable.
func TestRemoteOutage(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, "ES256", "out-known")
	other := newTestKey(t, "ES256", "out-unknown")
	srv := newJWKSServer(t, jwksOf(t, k))
	var log fetchLog
	v := remoteVerifier(t, srv, verify.RemoteOptions{MinRefetchInterval: time.Millisecond, OnFetch: log.record})
	startVerifier(t, v)
	eventually(t, "keys loaded", func() bool { return v.Ready() && log.len() == 1 })
	srv.Close()

	steps := []struct {
		name string
		key  *testKey
		want error
	}{
		{"known kid", k, nil},
		{"unknown kid", other, verify.ErrJWKSUnavailable},
		{"known kid after the failed refetch", k, nil},
		{"unknown kid again", other, verify.ErrJWKSUnavailable},
	}
	for _, st := range steps {
		_, err := check(v, st.key.mint(t, nil, claims(nil)))
		requireCode(t, st.want, err)
		require.Equal(t, st.want != nil, verify.IsUnavailable(err), st.name)
	}
	require.True(t, v.Ready(), "cached keys keep the verifier ready")
	results, keys := log.snapshot()
	require.Equal(t, "success", results[0])
	for i := 1; i < len(results); i++ {
		require.Equal(t, "failure", results[i])
		require.Equal(t, 1, keys[i], "a failed fetch keeps the last good keys")
	}
}

// TestRemoteFailureWithinInterval: after a failed early refetch, further
// unknown kids within MinRefetchInterval cost no fetch and are still
// jwks_unavailable (the endpoint is known to be failing), while known kids
// verify from the cached keys.
func TestRemoteFailureWithinInterval(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, "ES256", "rl-known")
	unknown := newTestKey(t, "ES256", "rl-unknown")
	srv := newJWKSServer(t, jwksOf(t, k))
	v := remoteVerifier(t, srv, verify.RemoteOptions{MinRefetchInterval: time.Hour})
	startVerifier(t, v)
	eventually(t, "keys loaded", v.Ready)
	srv.set(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })

	steps := []struct {
		name     string
		key      *testKey
		want     error
		wantHits int64
	}{
		{"unknown kid: refetch fails", unknown, verify.ErrJWKSUnavailable, 2},
		{"unknown kid again: no fetch, still unavailable", unknown, verify.ErrJWKSUnavailable, 2},
		{"known kid from the cache", k, nil, 2},
	}
	for _, st := range steps {
		_, err := check(v, st.key.mint(t, nil, claims(nil)))
		requireCode(t, st.want, err)
		require.Equal(t, st.wantHits, srv.hits.Load(), st.name)
	}
}

// TestRemoteHangingServer: a JWKS endpoint that never answers is cut off by
// RemoteOptions.Timeout; a verifier that never loaded keys answers
// jwks_unavailable, and once the test lets go nothing of the verifier is
// left running.
func TestRemoteHangingServer(t *testing.T) {
	// Not parallel: it counts goroutines.
	baseline := runtime.NumGoroutine()
	k := newTestKey(t, "ES256", "hang")
	release := make(chan struct{})
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	srv := newJWKSServer(t, nil)
	t.Cleanup(letGo) // runs before the server's Close, which waits for handlers
	srv.set(func(http.ResponseWriter, *http.Request) { <-release })

	v := remoteVerifier(t, srv, verify.RemoteOptions{Timeout: 50 * time.Millisecond, MinRefetchInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	v.Start(ctx)

	tok := k.mint(t, nil, claims(nil))
	_, err := check(v, tok)
	requireCode(t, verify.ErrJWKSUnavailable, err)
	require.True(t, verify.IsUnavailable(err))
	require.False(t, v.Ready())

	canceled, cancelReq := context.WithCancel(context.Background())
	cancelReq()
	_, err = v.Verify(canceled, verify.ParseToken(tok), []string{testAudience})
	requireCode(t, verify.ErrJWKSUnavailable, err)

	cancel()
	letGo()
	srv.Close()
	eventually(t, "the verifier's goroutines to end", func() bool {
		return goroutinesIn("verify.(*remoteKeys)") == 0
	})
	eventually(t, "the goroutine count to return to its baseline", func() bool {
		return runtime.NumGoroutine() <= baseline
	})
}

// TestRemoteBadResponses: an oversized, malformed, empty or non-200 answer
// is a failed fetch. After a good load the old keys stay (known kids verify,
// an unknown kid is jwks_unavailable); with no keys ever loaded the verifier
// is not ready and answers jwks_unavailable.
func TestRemoteBadResponses(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, "ES256", "bad-known")
	unknown := newTestKey(t, "ES256", "bad-unknown")
	good := jwksOf(t, k, unknown)
	hmacOnly := jwksOf(t, newTestKey(t, "HS256", "oct"))
	encOnly := bytes.Replace(jwksOf(t, unknown), []byte(`"use":"sig"`), []byte(`"use":"enc"`), 1)
	require.NotEqual(t, jwksOf(t, unknown), encOnly)
	body := func(status int, b []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write(b)
		}
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"2 MiB body", body(200, append(good, bytes.Repeat([]byte(" "), 2<<20)...))},
		{"malformed JSON", body(200, []byte(`{"keys":[{"kty":"EC",`))},
		{"HTML", body(200, []byte(`<html>sign in</html>`))},
		{"empty body", body(200, nil)},
		{"no keys", body(200, []byte(`{"keys":[]}`))},
		{"only an HMAC key", body(200, hmacOnly)},
		{"only an encryption key", body(200, encOnly)},
		{"500 with a valid JWKS", body(500, good)},
		{"404", body(404, []byte("not found"))},
		{"redirect loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, r.URL.String(), http.StatusFound) }},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/after a good load", func(t *testing.T) {
			t.Parallel()
			srv := newJWKSServer(t, jwksOf(t, k))
			var log fetchLog
			v := remoteVerifier(t, srv, verify.RemoteOptions{MinRefetchInterval: time.Hour, OnFetch: log.record})
			startVerifier(t, v)
			eventually(t, "keys loaded", func() bool { return log.len() == 1 })
			srv.set(tc.handler)

			_, err := check(v, unknown.mint(t, nil, claims(nil)))
			requireCode(t, verify.ErrJWKSUnavailable, err)
			_, err = check(v, k.mint(t, nil, claims(nil)))
			require.NoError(t, err, "the old keys are still in use")
			require.True(t, v.Ready())
			results, keys := log.snapshot()
			require.Equal(t, []string{"success", "failure"}, results)
			require.Equal(t, []int{1, 1}, keys)
		})
		t.Run(tc.name+"/never loaded", func(t *testing.T) {
			t.Parallel()
			srv := newJWKSServer(t, nil)
			srv.set(tc.handler)
			var log fetchLog
			v := remoteVerifier(t, srv, verify.RemoteOptions{MinRefetchInterval: time.Hour, OnFetch: log.record})

			_, err := check(v, k.mint(t, nil, claims(nil)))
			requireCode(t, verify.ErrJWKSUnavailable, err)
			require.False(t, v.Ready())
			results, keys := log.snapshot()
			require.Equal(t, []string{"failure"}, results)
			require.Equal(t, []int{0}, keys)
		})
	}
}

// TestRemoteBodyLimit: a JWKS of exactly MaxResponseBody bytes is read; one
// byte more is refused.
func TestRemoteBodyLimit(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, "ES256", "limit")
	doc := jwksOf(t, k)
	pad := func(n int) []byte {
		return append(append([]byte(nil), doc...), bytes.Repeat([]byte(" "), n-len(doc))...)
	}
	tests := []struct {
		name string
		size int
		want error
	}{
		{"exactly the limit", verify.MaxResponseBody, nil},
		{"one byte over", verify.MaxResponseBody + 1, verify.ErrJWKSUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newJWKSServer(t, pad(tc.size))
			v := remoteVerifier(t, srv, verify.RemoteOptions{MinRefetchInterval: time.Hour})
			_, err := check(v, k.mint(t, nil, claims(nil)))
			requireCode(t, tc.want, err)
			require.Equal(t, tc.want == nil, v.Ready())
		})
	}
}

// TestRemoteSingleFlight: concurrent tokens with the same new kid cause
// exactly one fetch, which all of them wait for and share.
func TestRemoteSingleFlight(t *testing.T) {
	// Not parallel: it reads every goroutine's stack.
	const callers = 8
	oldKey := newTestKey(t, "ES256", "sf-old")
	newKey := newTestKey(t, "ES256", "sf-new")
	srv := newJWKSServer(t, jwksOf(t, oldKey))
	v := remoteVerifier(t, srv, verify.RemoteOptions{MinRefetchInterval: time.Hour})
	startVerifier(t, v)
	eventually(t, "keys loaded", v.Ready)
	require.EqualValues(t, 1, srv.hits.Load())

	gate := make(chan struct{})
	var gateOnce sync.Once
	openGate := func() { gateOnce.Do(func() { close(gate) }) }
	t.Cleanup(openGate)
	rotated := jwksOf(t, oldKey, newKey)
	srv.set(func(w http.ResponseWriter, _ *http.Request) {
		<-gate
		_, _ = w.Write(rotated)
	})

	tok := newKey.mint(t, nil, claims(nil))
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := check(v, tok)
			errs <- err
		}()
	}
	// Hold the one fetch at the server until every caller is waiting on it.
	eventually(t, "the refetch to reach the server", func() bool { return srv.hits.Load() == 2 })
	eventually(t, "all callers waiting for the refetch", func() bool {
		return goroutinesIn("verify.(*remoteKeys).refetch") == callers
	})
	openGate()
	for range callers {
		require.NoError(t, <-errs)
	}
	require.EqualValues(t, 2, srv.hits.Load(), "one refetch for all callers")
}

// TestCheckURL: identity-provider URLs must be https, except http on
// loopback hosts or with allowInsecure; anything else is refused.
func TestCheckURL(t *testing.T) {
	t.Parallel()
	const (
		ok       = ""
		notHTTPS = "must be an https URL"
		notAbs   = "must be an absolute URL"
	)
	tests := []struct {
		url      string
		insecure bool
		want     string
	}{
		{"https://idp.example/jwks", false, ok},
		{"https://idp.example:8443/.well-known/jwks.json", false, ok},
		{"HTTPS://idp.example/jwks", false, ok},
		{"http://127.0.0.1:8080/jwks", false, ok},
		{"http://127.9.8.7/jwks", false, ok},
		{"http://localhost/jwks", false, ok},
		{"http://LocalHost:9/jwks", false, ok},
		{"http://[::1]:8080/jwks", false, ok},
		{"http://idp.example/jwks", false, notHTTPS},
		{"http://idp.example/jwks", true, ok},
		{"http://10.0.0.1/jwks", false, notHTTPS},
		{"http://0.0.0.0/jwks", false, notHTTPS},
		{"http://127.0.0.1.evil.example/jwks", false, notHTTPS},
		{"http://localhost.evil.example/jwks", false, notHTTPS},
		{"http://evil.example/?h=127.0.0.1", false, notHTTPS},
		{"ftp://idp.example/jwks", false, notHTTPS},
		{"ftp://idp.example/jwks", true, notHTTPS},
		{"file:///etc/passwd", true, notAbs},
		{"javascript:alert(1)", true, notAbs},
		{"idp.example/jwks", false, notAbs},
		{"/jwks", false, notAbs},
		{"https://", false, notAbs},
		{"https:///jwks", false, notAbs},
		{"", false, notAbs},
		{"not a url", false, notAbs},
		{"://idp.example", false, notAbs},
		{"https://idp.example/\x7f", false, notAbs},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			t.Parallel()
			err := verify.CheckURL(tc.url, tc.insecure)
			if tc.want == ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), tc.want), "got %q, want %q", err, tc.want)
		})
	}
}
