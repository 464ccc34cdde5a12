package upstream

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/tokengate/tokengate/config"
)

// BenchmarkSignES256 signs one assertion (the cost of a first-seen token on
// an assertion route, beside its verification).
func BenchmarkSignES256(b *testing.B) {
	c := newClock()
	s := newSigner(b, c, nil, config.AssertionKey{KeyFile: newKeyFile(b, "ES256"), Kid: "tg-1"})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Sign("mcp", "https://backend.internal", 5*time.Minute, alice, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCachedAssertion looks up a cached assertion, token hashing
// included: the hot path of an assertion route.
func BenchmarkCachedAssertion(b *testing.B) {
	c := newClock()
	s := newSigner(b, c, nil, config.AssertionKey{KeyFile: newKeyFile(b, "ES256"), Kid: "tg-1"})
	route := &Route{mode: config.UpstreamAssertion, asserter: s.Asserter("mcp", "https://backend.internal", 5*time.Minute)}
	const token = "eyJhbGciOiJFUzI1NiIsImtpZCI6InRnLTEiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiYWxpY2UiLCJhdWQiOiJhcGk6Ly9tY3AiLCJzY29wZSI6Im1jcDpyZWFkIG1jcDp3cml0ZSIsImV4cCI6MTkwMDAwMzYwMH0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
	req := Request{Token: token, Identity: alice}
	ctx := context.Background()
	if _, err := route.Authorization(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := route.Authorization(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCachedAssertionHashed is BenchmarkCachedAssertion for a caller
// that passes the token hash it computed already.
func BenchmarkCachedAssertionHashed(b *testing.B) {
	c := newClock()
	s := newSigner(b, c, nil, config.AssertionKey{KeyFile: newKeyFile(b, "ES256"), Kid: "tg-1"})
	route := &Route{mode: config.UpstreamAssertion, asserter: s.Asserter("mcp", "https://backend.internal", 5*time.Minute)}
	req := Request{Token: "t", Identity: alice}
	h := HashToken(req.Token)
	ctx := context.Background()
	if _, err := route.AuthorizationHashed(ctx, h, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := route.AuthorizationHashed(ctx, h, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCachedExchange looks up a cached exchanged token.
func BenchmarkCachedExchange(b *testing.B) {
	e, err := NewExchanger(ExchangeOptions{TokenEndpoint: "https://idp.example/token", ClientID: "c", ClientSecret: "s", Audience: "a"})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	hashes := make([]TokenHash, 1024)
	for i := range hashes {
		hashes[i] = HashToken(strconv.Itoa(i))
		e.cache.put(cacheKey{token: hashes[i], sub: e.sub}, "Bearer x", now.Add(time.Hour), now)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := e.Authorization(ctx, hashes[i&1023], Request{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
