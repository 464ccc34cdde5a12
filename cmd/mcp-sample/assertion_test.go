package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/keys"
	"github.com/tokengate/tokengate/upstream"
	"github.com/tokengate/tokengate/verify"
)

const sampleAudience = "https://mcp-backend.internal"

func assertionKey(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "k")
	_, err := keys.Generate("ES256", "", dir)
	require.NoError(t, err)
	return filepath.Join(dir, keys.PrivateKeyFile)
}

func signerAt(t *testing.T, keyFile, kid string, now func() time.Time) *upstream.Signer {
	t.Helper()
	s, err := upstream.NewSigner(config.Assertion{Issuer: "https://tokengate.test", KeyFile: keyFile, Kid: kid}, nil,
		upstream.SignerOptions{Now: now})
	require.NoError(t, err)
	return s
}

func mint(t *testing.T, s *upstream.Signer, audience string) string {
	t.Helper()
	tok, _, err := s.Sign("mcp", audience, 5*time.Minute, &verify.Identity{Subject: "alice", Scopes: []string{"mcp:read"}}, time.Time{})
	require.NoError(t, err)
	return tok
}

// TestVerifyAssertion puts the SDK's bearer middleware with tokengate's
// JWKS in front of a handler and checks which requests get through.
func TestVerifyAssertion(t *testing.T) {
	goodKey := assertionKey(t)
	good := signerAt(t, goodKey, "tg-1", time.Now)
	var jwks atomic.Pointer[[]byte]
	body := good.JWKS()
	jwks.Store(&body)
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*jwks.Load())
	}))
	t.Cleanup(jwksSrv.Close)

	var reached atomic.Int32
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := withAssertion(ctx, inner, jwksSrv.URL, sampleAudience)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	forged := signerAt(t, assertionKey(t), "tg-1", time.Now) // same kid, another key
	expired := signerAt(t, goodKey, "tg-1", func() time.Time { return time.Now().Add(-time.Hour) })
	tests := []struct {
		name   string
		path   string
		auth   string
		status int
	}{
		{"good assertion", "/mcp", "Bearer " + mint(t, good, sampleAudience), http.StatusOK},
		{"health is open", "/healthz", "", http.StatusOK},
		{"no Authorization", "/mcp", "", http.StatusUnauthorized},
		{"another scheme", "/mcp", "Basic YTpi", http.StatusUnauthorized},
		{"forged: another key with the same kid", "/mcp", "Bearer " + mint(t, forged, sampleAudience), http.StatusUnauthorized},
		{"expired", "/mcp", "Bearer " + mint(t, expired, sampleAudience), http.StatusUnauthorized},
		{"wrong audience", "/mcp", "Bearer " + mint(t, good, "https://other.internal"), http.StatusUnauthorized},
		{"not a JWT", "/mcp", "Bearer not-a-jwt", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := reached.Load()
			req, err := http.NewRequest(http.MethodPost, srv.URL+tt.path, nil)
			require.NoError(t, err)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			assert.Equal(t, tt.status, resp.StatusCode)
			want := int32(0)
			if tt.status == http.StatusOK {
				want = 1
			}
			assert.Equal(t, want, reached.Load()-before, "reached the handler")
		})
	}
}

// TestWithAssertionFlags checks the flag combinations.
func TestWithAssertionFlags(t *testing.T) {
	inner := http.NotFoundHandler()
	h, err := withAssertion(context.Background(), inner, "", "")
	require.NoError(t, err)
	assert.NotNil(t, h)
	_, err = withAssertion(context.Background(), inner, "http://127.0.0.1:1/jwks.json", "")
	assert.EqualError(t, err, "--verify-assertion requires --audience")
	_, err = withAssertion(context.Background(), inner, "", "aud")
	assert.EqualError(t, err, "--audience applies only with --verify-assertion")
}

// TestVerifyAssertionKeyRotation checks that an assertion signed by a key
// that tokengate has just started publishing verifies after a refetch.
func TestVerifyAssertionKeyRotation(t *testing.T) {
	oldKey, newKey := assertionKey(t), assertionKey(t)
	s1 := signerAt(t, oldKey, "tg-1", time.Now)
	var jwks atomic.Pointer[[]byte]
	body := s1.JWKS()
	jwks.Store(&body)
	var fetches atomic.Int32
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*jwks.Load())
	}))
	t.Cleanup(jwksSrv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := newAssertionVerifier(ctx, jwksSrv.URL, sampleAudience)
	require.NoError(t, err)
	v.refetchGap = 0

	_, err = v.verify(ctx, mint(t, s1, sampleAudience), nil)
	require.NoError(t, err)

	// A reload rotates to a new key; the old one stays published.
	s2, err := upstream.NewSigner(config.Assertion{Issuer: "https://tokengate.test", KeyFile: newKey, Kid: "tg-2"}, s1, upstream.SignerOptions{})
	require.NoError(t, err)
	body2 := s2.JWKS()
	jwks.Store(&body2)
	info, err := v.verify(ctx, mint(t, s2, sampleAudience), nil)
	require.NoError(t, err)
	assert.Equal(t, "alice", info.UserID)
	assert.Equal(t, []string{"mcp:read"}, info.Scopes)
	_, err = v.verify(ctx, mint(t, s1, sampleAudience), nil)
	require.NoError(t, err, "the old key's assertions still verify")
	assert.GreaterOrEqual(t, fetches.Load(), int32(2), "refetched for the unknown kid")
}
