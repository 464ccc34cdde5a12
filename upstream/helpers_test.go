package upstream

import (
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/keys"
	"github.com/tokengate/tokengate/verify"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_900_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newKeyFile writes a fresh private key for alg with `tokengate keys
// generate` and returns its path.
func newKeyFile(t testing.TB, alg string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "k")
	_, err := keys.Generate(alg, "", dir)
	require.NoError(t, err)
	return filepath.Join(dir, keys.PrivateKeyFile)
}

func newSigner(t testing.TB, c *clock, prev *Signer, ks ...config.AssertionKey) *Signer {
	t.Helper()
	s, err := NewSigner(config.Assertion{Issuer: "https://tokengate.test", Keys: ks}, prev, SignerOptions{Now: c.Now})
	require.NoError(t, err)
	return s
}

var alice = &verify.Identity{
	Verifier: "okta", Subject: "alice", Issuer: "https://idp.test", ClientID: "app-1",
	Scopes: []string{"mcp:read", "mcp:write"},
}

// verifyWith checks a compact JWS against a JWKS document and returns its
// claims and kid; it fails the test if the signature does not verify.
func verifyWith(t *testing.T, jwks []byte, token string) (map[string]any, string) {
	t.Helper()
	set, err := jwk.Parse(jwks)
	require.NoError(t, err)
	payload, err := jws.Verify([]byte(token), jws.WithKeySet(set, jws.WithRequireKid(true)))
	require.NoError(t, err)
	msg, err := jws.Parse([]byte(token))
	require.NoError(t, err)
	kid, _ := msg.Signatures()[0].ProtectedHeaders().KeyID()
	var claims map[string]any
	require.NoError(t, json.Unmarshal(payload, &claims))
	return claims, kid
}

// jwksKids returns the kids of a JWKS document, in order.
func jwksKids(t *testing.T, doc []byte) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(doc, &set))
	var out []string
	for _, k := range set.Keys {
		require.Empty(t, k.D, "the JWKS holds public keys only")
		out = append(out, k.Kid)
	}
	return out
}
