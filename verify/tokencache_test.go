package verify

import (
	"github.com/tokengate/tokengate/jose"

	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const cacheIssuer = "https://idp.example"

// entryNow is the clock of the entry tests.
var entryNow = time.Unix(1_800_000_000, 0)

// testClock is a settable clock.
type testClock struct{ ns atomic.Int64 }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.set(t)
	return c
}

func (c *testClock) Now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) set(t time.Time) { c.ns.Store(t.UnixNano()) }

// newTestEntryMaker returns a function that inserts distinct verified
// tokens into c, each valid until exp.
func newTestEntryMaker(t *testing.T, c *tokenCache) func(i int, exp time.Time) tokenKey {
	t.Helper()
	v, err := NewJWT(JWTOptions{
		Name: "hs", Issuer: cacheIssuer, Audiences: []string{"api://x"},
		Keys: SharedSecret([]byte(strings.Repeat("s", 32))), Algorithms: []jose.Alg{"HS256"},
	})
	require.NoError(t, err)
	return func(i int, exp time.Time) tokenKey {
		k := newTokenKey(fmt.Sprintf("token-%d", i))
		tok := &Token{Claims: &Claims{Issuer: cacheIssuer, Audience: StringList{"api://x"}, Expiry: &NumericDate{Time: exp}}}
		require.NotNil(t, c.put(k, v, v.keysVersion(), tok, &Identity{Verifier: "hs", Issuer: cacheIssuer, Subject: fmt.Sprint(i)}))
		return k
	}
}

// TestTokenCacheBound checks that the cache never holds more than its size,
// whatever the shard count.
func TestTokenCacheBound(t *testing.T) {
	for _, size := range []int{1, 4, 31, 100, 5000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			clock := newTestClock(entryNow)
			c := NewTokenCache(CacheOptions{Size: size, Now: clock.Now})
			put := newTestEntryMaker(t, c)
			for i := range 3 * size {
				put(i, entryNow.Add(time.Hour))
				require.LessOrEqual(t, c.Len(), size)
			}
			assert.Equal(t, size, c.Len(), "full")
			limits := 0
			for i := range c.shards {
				limits += c.shards[i].limit
			}
			assert.Equal(t, size, limits, "the shards' shares add up to the size")
		})
	}
}

// TestTokenCacheEviction checks CLOCK's choices in one shard: an entry used
// since the hand passed gets a second chance, an unusable one goes first.
func TestTokenCacheEviction(t *testing.T) {
	clock := newTestClock(entryNow)
	c := NewTokenCache(CacheOptions{Size: 4, Now: clock.Now})
	require.Len(t, c.shards, 1)
	put := newTestEntryMaker(t, c)
	k0 := put(0, entryNow.Add(time.Hour))
	k1 := put(1, entryNow.Add(time.Hour))
	k2 := put(2, entryNow.Add(time.Minute))
	k3 := put(3, entryNow.Add(time.Hour))

	require.NotNil(t, c.get(&k0), "k0 is referenced")
	k4 := put(4, entryNow.Add(time.Hour))
	assert.NotNil(t, c.get(&k0), "k0 had a second chance")
	assert.Nil(t, c.get(&k1), "k1 was the first unreferenced entry")

	// The hand is at k2, then k3. k2 is referenced but expires: it goes
	// rather than the unreferenced k3.
	require.NotNil(t, c.get(&k2))
	clock.set(entryNow.Add(time.Minute))
	put(5, entryNow.Add(time.Hour))
	assert.Nil(t, c.get(&k2), "the expired entry went first")
	assert.NotNil(t, c.get(&k3))
	assert.NotNil(t, c.get(&k4))
	assert.Equal(t, 4, c.Len())
}

// TestJWSShaped checks the cheap pre-test that decides whether a token is
// hashed and looked up at all.
func TestJWSShaped(t *testing.T) {
	tests := []struct {
		raw  string
		want bool
	}{
		{"a.b.c", true},
		{"..", true},
		{"abc", false},
		{"a.b", false},
		{"a.b.c.d", false},
		{"a.b.c.d.e", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, jwsShaped(tt.raw), tt.raw)
	}
}
