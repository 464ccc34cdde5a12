package verify_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/verify"
)

// TestNewJWTShapeErrors: the identity-provider shape options (contract
// section 13) are refused with their configuration key when inconsistent.
func TestNewJWTShapeErrors(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, "RS256", "k1")
	jwks := jwksOf(t, k)
	tests := []struct {
		name   string
		o      verify.JWTOptions
		prefix string
	}{
		{"issuer and issuers", verify.JWTOptions{Issuer: testIssuer, Issuers: []string{testIssuer}, Keys: verify.LocalJWKS(jwks)}, "issuers: "},
		{"empty issuer in issuers", verify.JWTOptions{Issuers: []string{testIssuer, ""}, Keys: verify.LocalJWKS(jwks)}, "issuers[1]: "},
		{"no discoverable issuer", verify.JWTOptions{Issuers: []string{"accounts.example", "http://idp.example"}, Keys: verify.DiscoveredJWKS()}, "issuers: "},
		{"scope_claim and scope_claims", verify.JWTOptions{Issuer: testIssuer, Keys: verify.LocalJWKS(jwks), ScopeClaim: "scp", ScopeClaims: []string{"roles"}}, "scope_claims: "},
		{"empty scope claim", verify.JWTOptions{Issuer: testIssuer, Keys: verify.LocalJWKS(jwks), ScopeClaims: []string{""}}, "scope_claims[0]: "},
		{"required claim without values", verify.JWTOptions{Issuer: testIssuer, Keys: verify.LocalJWKS(jwks), RequiredClaims: map[string][]string{"tid": nil}}, "required_claims.tid: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := verify.NewJWT(tc.o)
			require.Nil(t, v)
			require.Error(t, err)
			assert.Truef(t, strings.HasPrefix(err.Error(), tc.prefix), "error %q should start with %q", err, tc.prefix)
		})
	}
}

// TestJWTIssuers: a verifier with issuers accepts each of them exactly,
// discovers keys from the first URL among them, and says which it accepts.
func TestJWTIssuers(t *testing.T) {
	t.Parallel()
	v, err := verify.NewJWT(verify.JWTOptions{
		Issuers: []string{"accounts.example", "https://accounts.example"}, Audiences: []string{"api://mcp"},
		Keys: verify.DiscoveredJWKS(),
	})
	require.NoError(t, err)
	assert.Equal(t, "accounts.example", v.Issuer())
	assert.Equal(t, []string{"accounts.example", "https://accounts.example"}, v.Issuers())
	assert.True(t, v.AcceptsIssuer("accounts.example"))
	assert.True(t, v.AcceptsIssuer("https://accounts.example"))
	assert.False(t, v.AcceptsIssuer("http://accounts.example"))
	assert.False(t, v.AcceptsIssuer("https://accounts.example/"))
	assert.Equal(t, "https://accounts.example", verify.DiscoveryIssuer(v.Issuers(), false))
	assert.Equal(t, "http://127.0.0.1:8080/realms/x", verify.DiscoveryIssuer([]string{"x", "http://127.0.0.1:8080/realms/x"}, false))
	assert.Empty(t, verify.DiscoveryIssuer([]string{"x", "http://idp.example"}, false))
}
