package upstream

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/verify"
)

// TestAssertionCache checks reuse per (token, route, audience) and the
// re-mint after four fifths of the lifetime.
func TestAssertionCache(t *testing.T) {
	c := newClock()
	s := newSigner(t, c, nil, config.AssertionKey{KeyFile: newKeyFile(t, "ES256")})
	mcp := s.Asserter("mcp", "aud", 5*time.Minute)
	get := func(a *Asserter, token string) string {
		t.Helper()
		h, err := a.Authorization(HashToken(token), Request{Token: token, Identity: alice})
		require.NoError(t, err)
		return h
	}
	first := get(mcp, "t1")
	assert.Equal(t, first, get(mcp, "t1"), "same token and route: reused")
	assert.NotEqual(t, first, get(mcp, "t2"), "another token")
	assert.NotEqual(t, first, get(s.Asserter("other", "aud", 5*time.Minute), "t1"), "another route")
	assert.NotEqual(t, first, get(s.Asserter("mcp", "aud-2", 5*time.Minute), "t1"), "another audience")

	c.Advance(4*time.Minute - time.Second)
	assert.Equal(t, first, get(mcp, "t1"), "still fresh")
	c.Advance(time.Second)
	second := get(mcp, "t1")
	assert.NotEqual(t, first, second, "re-minted a minute before it expires")
	claims, _ := verifyWith(t, s.JWKS(), strings.TrimPrefix(second, "Bearer "))
	assert.Equal(t, float64(c.Now().Add(5*time.Minute).Unix()), claims["exp"])
}

// TestAssertionCacheCapped checks that an assertion cut short by the client
// token's exp is reused until that exp, and that the client token then
// counts as expired.
func TestAssertionCacheCapped(t *testing.T) {
	c := newClock()
	s := newSigner(t, c, nil, config.AssertionKey{KeyFile: newKeyFile(t, "ES256")})
	a := s.Asserter("mcp", "aud", 5*time.Minute)
	req := Request{Token: "t", Identity: alice, Expiry: c.Now().Add(90 * time.Second)}
	first, err := a.Authorization(HashToken("t"), req)
	require.NoError(t, err)
	c.Advance(89 * time.Second)
	again, err := a.Authorization(HashToken("t"), req)
	require.NoError(t, err)
	assert.Equal(t, first, again)
	c.Advance(time.Second)
	_, err = a.Authorization(HashToken("t"), req)
	require.ErrorIs(t, err, verify.ErrTokenExpired)
}

// TestAssertionCacheDisabled checks that cache_size 0 signs every time.
func TestAssertionCacheDisabled(t *testing.T) {
	c := newClock()
	zero := 0
	s, err := NewSigner(config.Assertion{Issuer: "i", KeyFile: newKeyFile(t, "ES256"), CacheSize: &zero}, nil, SignerOptions{Now: c.Now})
	require.NoError(t, err)
	a := s.Asserter("mcp", "aud", time.Minute)
	h1, err := a.Authorization(HashToken("t"), Request{Identity: alice})
	require.NoError(t, err)
	h2, err := a.Authorization(HashToken("t"), Request{Identity: alice})
	require.NoError(t, err)
	assert.NotEqual(t, h1, h2, "a fresh jti each time")
}

// TestShardedCacheBounded checks the size bound, expiry and that a full
// shard drops an expired entry before a live one.
func TestShardedCacheBounded(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	c := newShardedCache[int](64)
	for i := range 5000 {
		c.put(cacheKey{token: HashToken(itoa(int64(i)))}, i, now.Add(time.Minute), now)
	}
	assert.LessOrEqual(t, c.len(), 64)
	assert.Positive(t, c.len())

	k := cacheKey{token: HashToken("x"), sub: "a"}
	c.put(k, 1, now.Add(time.Second), now)
	v, ok := c.get(k, now)
	assert.True(t, ok)
	assert.Equal(t, 1, v)
	_, ok = c.get(k, now.Add(time.Second))
	assert.False(t, ok, "expired")
	_, ok = c.get(cacheKey{token: k.token, sub: "b"}, now)
	assert.False(t, ok, "another sub")

	// One shard of one entry: an expired entry is the one dropped.
	small := newShardedCache[int](1)
	shard := small.shard(k)
	expired := cacheKey{token: k.token, sub: "old"}
	small.put(expired, 1, now.Add(time.Second), now)
	small.put(k, 2, now.Add(time.Hour), now.Add(2*time.Second))
	assert.Len(t, shard.m, 1)
	v, ok = small.get(k, now.Add(2*time.Second))
	assert.True(t, ok)
	assert.Equal(t, 2, v)

	var disabled *shardedCache[int]
	disabled.put(k, 1, now.Add(time.Hour), now)
	_, ok = disabled.get(k, now)
	assert.False(t, ok)
	assert.Nil(t, newShardedCache[int](0))
}

// TestAssertionConcurrent mints with the old configuration's signer (as
// requests in flight during a reload do) while the new one serves its JWKS,
// for the race detector, and checks that the new JWKS then publishes the
// old key and verifies every assertion.
func TestAssertionConcurrent(t *testing.T) {
	c := newClock()
	s1 := newSigner(t, c, nil, config.AssertionKey{KeyFile: newKeyFile(t, "ES256"), Kid: "tg-1"})
	a := s1.Asserter("mcp", "aud", 5*time.Minute)
	s2 := newSigner(t, c, s1, config.AssertionKey{KeyFile: newKeyFile(t, "ES256"), Kid: "tg-2"})
	assert.Equal(t, []string{"tg-2"}, jwksKids(t, s2.JWKS()), "tg-1 has signed nothing yet")
	var wg sync.WaitGroup
	headers := make([][]string, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				h, err := a.Authorization(HashToken(itoa(int64(i%10))), Request{Identity: alice})
				if err != nil {
					t.Error(err)
					return
				}
				headers[g] = append(headers[g], h)
				_ = s2.JWKS()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, []string{"tg-2", "tg-1"}, jwksKids(t, s2.JWKS()), "requests in flight under the old configuration signed with tg-1")
	for _, hs := range headers {
		for _, h := range hs {
			verifyWith(t, s2.JWKS(), strings.TrimPrefix(h, "Bearer "))
		}
	}
	assert.Equal(t, 10, s1.cache.len(), "one entry per token")
}
