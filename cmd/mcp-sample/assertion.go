package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/modelcontextprotocol/go-sdk/auth"
)

// assertionSkew is the clock tolerance for the assertion's exp, nbf and iat.
const assertionSkew = 30 * time.Second

// jwksRefetchInterval is the least time between two refetches of the JWKS
// triggered by an assertion that does not verify (for example one signed by
// a key tokengate has just rotated in).
const jwksRefetchInterval = 10 * time.Second

// assertionVerifier checks the upstream assertions tokengate signs: the
// signature against tokengate's JWKS (fetched and kept fresh by a jwx
// cache), exp, nbf and iat, and the audience.
type assertionVerifier struct {
	cache       *jwk.Cache
	jwksURL     string
	audience    string
	refetchGap  time.Duration // least time between refetches
	lastRefetch atomic.Int64  // unix nanoseconds
}

// newAssertionVerifier registers jwksURL in a jwx JWKS cache that lives
// until ctx ends. It does not wait for the first fetch, so the sample may
// start before tokengate.
func newAssertionVerifier(ctx context.Context, jwksURL, audience string) (*assertionVerifier, error) {
	cache, err := jwk.NewCache(ctx, httprc.NewClient())
	if err != nil {
		return nil, err
	}
	if err := cache.Register(ctx, jwksURL, jwk.WithWaitReady(false), jwk.WithMinInterval(jwksRefetchInterval)); err != nil {
		return nil, fmt.Errorf("--verify-assertion: %w", err)
	}
	return &assertionVerifier{cache: cache, jwksURL: jwksURL, audience: audience, refetchGap: jwksRefetchInterval}, nil
}

// verify is an auth.TokenVerifier. A token that does not verify against
// the cached keys is tried once more after a refetch, at most once per
// jwksRefetchInterval.
func (v *assertionVerifier) verify(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
	set, err := v.cache.Lookup(ctx, v.jwksURL)
	var tok jwt.Token
	if err == nil {
		tok, err = v.parse(token, set)
	}
	if err != nil && v.mayRefetch() {
		if fresh, ferr := v.cache.Refresh(ctx, v.jwksURL); ferr == nil {
			tok, err = v.parse(token, fresh)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: assertion rejected", auth.ErrInvalidToken)
	}
	info := &auth.TokenInfo{}
	info.Expiration, _ = tok.Expiration()
	info.UserID, _ = tok.Subject()
	var scope string
	if tok.Get("scope", &scope) == nil && scope != "" {
		info.Scopes = strings.Split(scope, " ")
	}
	return info, nil
}

func (v *assertionVerifier) parse(token string, set jwk.Set) (jwt.Token, error) {
	return jwt.ParseString(token,
		jwt.WithKeySet(set, jws.WithRequireKid(true)),
		jwt.WithValidate(true),
		jwt.WithAudience(v.audience),
		jwt.WithAcceptableSkew(assertionSkew),
	)
}

func (v *assertionVerifier) mayRefetch() bool {
	now := time.Now().UnixNano()
	last := v.lastRefetch.Load()
	return now-last >= int64(v.refetchGap) && v.lastRefetch.CompareAndSwap(last, now)
}

// withAssertion wraps next so that every request but GET /healthz must carry
// a valid tokengate assertion for audience (401 otherwise), checked by the
// official MCP Go SDK's bearer-token middleware. An empty jwksURL returns
// next unchanged.
func withAssertion(ctx context.Context, next http.Handler, jwksURL, audience string) (http.Handler, error) {
	if jwksURL == "" {
		if audience != "" {
			return nil, errors.New("--audience applies only with --verify-assertion")
		}
		return next, nil
	}
	if audience == "" {
		return nil, errors.New("--verify-assertion requires --audience")
	}
	v, err := newAssertionVerifier(ctx, jwksURL, audience)
	if err != nil {
		return nil, err
	}
	protected := auth.RequireBearerToken(v.verify, &auth.RequireBearerTokenOptions{})(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		protected.ServeHTTP(w, r)
	}), nil
}
