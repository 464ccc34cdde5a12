package verify

import (
	"github.com/tokengate/tokengate/jose"

	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// entryCache is a cache that copies the claims "email" and "groups" into
// headers and interns the audience "api://x".
func entryCache(t *testing.T) (*tokenCache, *JWT) {
	t.Helper()
	c := NewTokenCache(CacheOptions{Size: 64, Now: func() time.Time { return entryNow }, ClaimNames: []string{"email", "groups"}, Audiences: []string{"api://x"}})
	v, err := NewJWT(JWTOptions{
		Name: "hs", Issuer: cacheIssuer, Audiences: []string{"api://x"},
		Keys: SharedSecret([]byte(strings.Repeat("s", 32))), Algorithms: []jose.Alg{"HS256"},
	})
	require.NoError(t, err)
	return c, v
}

// TestTokenEntryRoundTrip: what an entry answers is exactly what the
// identity it was made from says, for awkward identities too; what it
// cannot hold exactly is not cached.
func TestTokenEntryRoundTrip(t *testing.T) {
	long := strings.Repeat("a", 40<<10) // over a list item's 32 KiB
	huge := strings.Repeat("a", 70<<10) // over an entry's 64 KiB
	tests := []struct {
		name       string
		sub, cid   string
		scopes     []string
		aud        []string
		payload    map[string]any
		wantCached bool
	}{
		{"plain", "alice", "app", []string{"read", "write"}, []string{"api://x"}, map[string]any{"email": "a@example.com"}, true},
		{"empty", "", "", nil, nil, nil, true},
		{"scope with a space", "bob", "", []string{"read", "a b", "write"}, []string{"api://x"}, nil, true},
		{"empty scope", "bob", "", []string{"", "read"}, nil, nil, true},
		{"unicode", "zoë", "クライアント", []string{"lire"}, []string{"api://é"}, map[string]any{"email": "zoë@example.com", "groups": []string{"a", "b"}}, true},
		{"interned and not", "c", "", []string{"read"}, []string{"api://other", "api://x", "api://third"}, nil, true},
		{"many audiences", "d", "", []string{"read"}, manyStrings("aud", 300), nil, true},
		{"many scopes", "e", "", manyStrings("s", 500), []string{"api://x"}, nil, true},
		{"claim missing", "f", "", []string{"read"}, nil, map[string]any{"groups": "admins"}, true},
		{"long subject", long, "", []string{"read"}, nil, nil, true},
		{"huge subject", huge, "", []string{"read"}, nil, nil, false},
		{"long audience", "g", "", []string{"read"}, []string{long}, nil, false},
		{"long claim", "h", "", []string{"read"}, nil, map[string]any{"email": long}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, v := entryCache(t)
			id := &Identity{Verifier: "hs", Issuer: cacheIssuer, Subject: tt.sub, ClientID: tt.cid, Scopes: tt.scopes}
			if tt.payload != nil {
				b, err := json.Marshal(tt.payload)
				require.NoError(t, err)
				id.Payload = b
			}
			tok := &Token{Claims: &Claims{Issuer: cacheIssuer, Audience: StringList(tt.aud), Expiry: &NumericDate{Time: entryNow.Add(time.Hour)}}}
			k := newTokenKey("token-" + tt.name)
			e := c.put(k, v, v.keysVersion(), tok, id)
			if !tt.wantCached {
				assert.True(t, e == nil, "not cached")
				assert.True(t, c.get(&k) == nil, "not found")
				return
			}
			require.NotNil(t, e)
			require.Same(t, e, c.get(&k))

			f := e.fields()
			assert.True(t, tt.sub == f.sub, "subject")
			assert.Equal(t, tt.cid, f.clientID)
			assert.Equal(t, strings.Join(tt.scopes, " "), f.joinedScopes)
			var aud []string
			if tt.aud != nil {
				aud = []string{}
			}
			assert.Equal(t, tt.aud, c.appendAud(aud, f.aud))
			want := claimValues(id.Payload, c.claimNames)
			for _, name := range c.claimNames {
				assert.Equal(t, want[name], f.claim(c.claimNames, name), "claim %s", name)
			}
			assert.Empty(t, f.claim(c.claimNames, "unknown"))

			// Every scope is found, and nothing else, not even a join of two.
			assert.True(t, e.hasScopes(tt.scopes), "all scopes")
			assert.True(t, e.hasScopes(nil))
			for _, s := range tt.scopes {
				assert.True(t, e.hasScopes([]string{s}), "scope %q", s)
			}
			assert.False(t, e.hasScopes([]string{"absent"}))
			if len(tt.scopes) >= 2 {
				assert.False(t, e.hasScopes([]string{tt.scopes[0] + " " + tt.scopes[1]}) && !slices.Contains(tt.scopes, tt.scopes[0]+" "+tt.scopes[1]), "a join of two scopes is not a scope")
			}
			assert.Equal(t, v.checkAudience(tt.aud, []string{"api://x"}) == nil, e.checkAudience(c, []string{"api://x"}) == nil, "audience check")
		})
	}
}

func manyStrings(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// TestTokenCacheIndexCollision: two tokens whose hashes share the bytes
// the shard index is keyed by are told apart; the later one replaces the
// earlier one.
func TestTokenCacheIndexCollision(t *testing.T) {
	c, v := entryCache(t)
	tok := &Token{Claims: &Claims{Issuer: cacheIssuer, Audience: StringList{"api://x"}, Expiry: &NumericDate{Time: entryNow.Add(time.Hour)}}}
	a := newTokenKey("a")
	b := a
	b[31] ^= 1 // same shard, same index key, another token
	require.Same(t, c.shard(&a), c.shard(&b))
	require.Equal(t, indexKey(&a), indexKey(&b))

	ea := c.put(a, v, v.keysVersion(), tok, &Identity{Verifier: "hs", Issuer: cacheIssuer, Subject: "a"})
	require.NotNil(t, ea)
	assert.Same(t, ea, c.get(&a))
	assert.Nil(t, c.get(&b), "b is not a's entry")

	eb := c.put(b, v, v.keysVersion(), tok, &Identity{Verifier: "hs", Issuer: cacheIssuer, Subject: "b"})
	require.NotNil(t, eb)
	assert.Same(t, eb, c.get(&b))
	assert.Nil(t, c.get(&a), "a was replaced")
	assert.Equal(t, 1, c.Len())
}

// TestTokenCacheRefusesForeignIdentity: an entry answers with its
// verifier's issuer and name, so an identity that says otherwise is not
// cached.
func TestTokenCacheRefusesForeignIdentity(t *testing.T) {
	c, v := entryCache(t)
	exp := &NumericDate{Time: entryNow.Add(time.Hour)}
	tests := []struct {
		name   string
		tokIss string
		id     Identity
	}{
		{"identity issuer", cacheIssuer, Identity{Verifier: "hs", Issuer: "https://other"}},
		{"token issuer", "https://other", Identity{Verifier: "hs", Issuer: cacheIssuer}},
		{"verifier name", cacheIssuer, Identity{Verifier: "other", Issuer: cacheIssuer}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := &Token{Claims: &Claims{Issuer: tt.tokIss, Expiry: exp}}
			assert.Nil(t, c.put(newTokenKey(tt.name), v, v.keysVersion(), tok, &tt.id))
		})
	}
}
