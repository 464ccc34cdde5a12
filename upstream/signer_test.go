package upstream

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/verify"
)

// TestAssertionClaims signs with each supported key type and checks the
// header and every claim, and that the JWKS verifies the signature.
func TestAssertionClaims(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			c := newClock()
			s := newSigner(t, c, nil, config.AssertionKey{KeyFile: newKeyFile(t, alg), Kid: "tg-1"})
			a := s.Asserter("mcp", "https://backend.internal", 5*time.Minute)
			header, err := a.Authorization(HashToken("client-token"), Request{Token: "client-token", Identity: alice})
			require.NoError(t, err)
			token, ok := strings.CutPrefix(header, "Bearer ")
			require.True(t, ok)
			assert.NotContains(t, header, "client-token")

			claims, kid := verifyWith(t, s.JWKS(), token)
			assert.Equal(t, "tg-1", kid)
			jti, _ := claims["jti"].(string)
			assert.Len(t, jti, 22, "16 random bytes, base64url")
			delete(claims, "jti")
			now := float64(c.Now().Unix())
			assert.Equal(t, map[string]any{
				"iss": "https://tokengate.test", "aud": "https://backend.internal", "sub": "alice",
				"scope": "mcp:read mcp:write", "client_id": "app-1", "iat": now, "exp": now + 300, "tg_route": "mcp",
			}, claims)

			msg, err := jws.Parse([]byte(token))
			require.NoError(t, err)
			hdr := msg.Signatures()[0].ProtectedHeaders()
			typ, _ := hdr.Type()
			assert.Equal(t, "JWT", typ)
			algo, _ := hdr.Algorithm()
			assert.Equal(t, alg, algo.String())
		})
	}
}

// TestAssertionExpiryCapped checks that exp never passes the client token's
// exp, whether given or read from the verified payload, and that an expired
// client token is refused as verify.ErrTokenExpired.
func TestAssertionExpiryCapped(t *testing.T) {
	c := newClock()
	s := newSigner(t, c, nil, config.AssertionKey{KeyFile: newKeyFile(t, "ES256")})
	now := c.Now().Unix()
	withPayload := func(p string) *verify.Identity {
		id := *alice
		id.Payload = []byte(p)
		return &id
	}
	tests := []struct {
		name    string
		req     Request
		wantExp int64
		wantErr error
	}{
		{"no client exp: ttl", Request{Identity: alice}, now + 300, nil},
		{"client exp later than ttl", Request{Identity: alice, Expiry: c.Now().Add(time.Hour)}, now + 300, nil},
		{"client exp sooner than ttl", Request{Identity: alice, Expiry: c.Now().Add(90 * time.Second)}, now + 90, nil},
		{"client exp from the payload", Request{Identity: withPayload(`{"sub":"alice","exp":` + itoa(now+42) + `}`)}, now + 42, nil},
		{"fractional exp in the payload", Request{Identity: withPayload(`{"exp":` + itoa(now+42) + `.9}`)}, now + 42, nil},
		{"client token expired (accepted within clock skew)", Request{Identity: alice, Expiry: c.Now().Add(-time.Second)}, 0, verify.ErrTokenExpired},
		{"client token expires now", Request{Identity: alice, Expiry: c.Now()}, 0, verify.ErrTokenExpired},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Token = "token-" + itoa(int64(i))
			header, err := s.Asserter("mcp", "aud", 5*time.Minute).Authorization(HashToken(tt.req.Token), tt.req)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Empty(t, header)
				return
			}
			require.NoError(t, err)
			claims, _ := verifyWith(t, s.JWKS(), strings.TrimPrefix(header, "Bearer "))
			assert.Equal(t, float64(tt.wantExp), claims["exp"])
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestKeyRotationAcrossReload rotates the signing key by a reload and checks
// that the old key stays published exactly until its last assertion (plus
// RetireGrace) has expired, and that old assertions verify meanwhile.
func TestKeyRotationAcrossReload(t *testing.T) {
	c := newClock()
	oldKey, newKey := newKeyFile(t, "ES256"), newKeyFile(t, "EdDSA")
	s1 := newSigner(t, c, nil, config.AssertionKey{KeyFile: oldKey, Kid: "tg-1"})
	assert.Equal(t, []string{"tg-1"}, jwksKids(t, s1.JWKS()))
	old, err := s1.Asserter("mcp", "aud", 5*time.Minute).Authorization(HashToken("t"), Request{Identity: alice})
	require.NoError(t, err)

	c.Advance(time.Minute)
	// The reload lists only the new key.
	s2 := newSigner(t, c, s1, config.AssertionKey{KeyFile: newKey, Kid: "tg-2"})
	assert.Equal(t, "tg-2", s2.KeyID())
	assert.Equal(t, []string{"tg-2", "tg-1"}, jwksKids(t, s2.JWKS()), "the old key is still published")
	_, kid := verifyWith(t, s2.JWKS(), strings.TrimPrefix(old, "Bearer "))
	assert.Equal(t, "tg-1", kid, "an assertion minted before the reload still verifies")

	fresh, err := s2.Asserter("mcp", "aud", 5*time.Minute).Authorization(HashToken("t"), Request{Identity: alice})
	require.NoError(t, err)
	assert.NotEqual(t, old, fresh, "the new signer does not reuse the old key's cached assertion")
	_, kid = verifyWith(t, s2.JWKS(), strings.TrimPrefix(fresh, "Bearer "))
	assert.Equal(t, "tg-2", kid)

	// The old assertion expires 5m after it was minted; the key leaves
	// RetireGrace later.
	c.Advance(4*time.Minute + RetireGrace - time.Second)
	assert.Equal(t, []string{"tg-2", "tg-1"}, jwksKids(t, s2.JWKS()))
	c.Advance(time.Second)
	assert.Equal(t, []string{"tg-2"}, jwksKids(t, s2.JWKS()), "retired once its last assertion expired")

	// A further reload does not bring it back.
	s3 := newSigner(t, c, s2, config.AssertionKey{KeyFile: newKey, Kid: "tg-2"})
	assert.Equal(t, []string{"tg-2"}, jwksKids(t, s3.JWKS()))
}

// TestKeyRotationChain checks that a key retired by one reload survives a
// second reload while its assertions live, and that a key that never
// signed is dropped at once.
func TestKeyRotationChain(t *testing.T) {
	c := newClock()
	k1, k2, k3 := newKeyFile(t, "ES256"), newKeyFile(t, "ES256"), newKeyFile(t, "RS256")
	s1 := newSigner(t, c, nil, config.AssertionKey{KeyFile: k1, Kid: "k1"})
	_, err := s1.Asserter("mcp", "aud", 10*time.Minute).Authorization(HashToken("t"), Request{Identity: alice})
	require.NoError(t, err)
	s2 := newSigner(t, c, s1, config.AssertionKey{KeyFile: k2, Kid: "k2"})
	s3 := newSigner(t, c, s2, config.AssertionKey{KeyFile: k3, Kid: "k3"})
	assert.Equal(t, []string{"k3", "k1"}, jwksKids(t, s3.JWKS()), "k2 never signed; k1's assertion lives on")
}

// TestSeveralKeys checks that the first listed key signs and all are
// published, and that an unchanged signing key keeps the assertion cache
// across a reload.
func TestSeveralKeys(t *testing.T) {
	c := newClock()
	k1, k2 := newKeyFile(t, "ES256"), newKeyFile(t, "RS256")
	s1 := newSigner(t, c, nil, config.AssertionKey{KeyFile: k1, Kid: "new"}, config.AssertionKey{KeyFile: k2, Kid: "old"})
	assert.Equal(t, []string{"new", "old"}, jwksKids(t, s1.JWKS()))
	h1, err := s1.Asserter("mcp", "aud", time.Minute).Authorization(HashToken("t"), Request{Identity: alice})
	require.NoError(t, err)
	_, kid := verifyWith(t, s1.JWKS(), strings.TrimPrefix(h1, "Bearer "))
	assert.Equal(t, "new", kid)

	s2 := newSigner(t, c, s1, config.AssertionKey{KeyFile: k1, Kid: "new"})
	h2, err := s2.Asserter("mcp", "aud", time.Minute).Authorization(HashToken("t"), Request{Identity: alice})
	require.NoError(t, err)
	assert.Equal(t, h1, h2, "same signing key: the cache survives the reload")
}

// TestSignerErrors checks the configuration errors and their key paths.
func TestSignerErrors(t *testing.T) {
	c := newClock()
	es384, es256 := newKeyFile(t, "ES384"), newKeyFile(t, "ES256")
	hmacDir := t.TempDir() + "/secret"
	require.NoError(t, os.WriteFile(hmacDir, []byte("base64:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="), 0o600))
	tests := []struct {
		name string
		cfg  config.Assertion
		want string
	}{
		{"missing file", config.Assertion{Issuer: "i", KeyFile: "/nonexistent/key.pem"}, "assertion.key_file: reading key file /nonexistent/key.pem"},
		{"ES384", config.Assertion{Issuer: "i", Keys: []config.AssertionKey{{KeyFile: es256}, {KeyFile: es384}}}, "assertion.keys[1].key_file: " + es384 + ": must be an ES256"},
		{"HMAC secret", config.Assertion{Issuer: "i", KeyFile: hmacDir}, "assertion.key_file: " + hmacDir + ": must be an ES256"},
		{"no issuer", config.Assertion{KeyFile: es256}, "assertion.issuer: is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSigner(tt.cfg, nil, SignerOptions{Now: c.Now})
			var cerr *config.Error
			require.True(t, errors.As(err, &cerr), "got %v", err)
			require.Len(t, cerr.Problems, 1)
			assert.True(t, strings.HasPrefix(cerr.Problems[0].String(), tt.want), "got %q", cerr.Problems[0].String())
		})
	}
}

// TestKidReusedForAnotherKey refuses a reload that gives a live key's kid to
// a different key: upstreams could not tell the two apart.
func TestKidReusedForAnotherKey(t *testing.T) {
	c := newClock()
	s1 := newSigner(t, c, nil, config.AssertionKey{KeyFile: newKeyFile(t, "ES256"), Kid: "tg"})
	_, err := s1.Asserter("mcp", "aud", time.Minute).Authorization(HashToken("t"), Request{Identity: alice})
	require.NoError(t, err)
	_, err = NewSigner(config.Assertion{Issuer: "https://tokengate.test", Keys: []config.AssertionKey{{KeyFile: newKeyFile(t, "ES256"), Kid: "tg"}}},
		s1, SignerOptions{Now: c.Now})
	var cerr *config.Error
	require.ErrorAs(t, err, &cerr)
	assert.Contains(t, cerr.Problems[0].String(), `assertion: kid "tg" now names a different key`)
}
