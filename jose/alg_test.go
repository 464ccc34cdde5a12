package jose_test

import (
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/jose"
)

// TestSupported pins the list every part of tokengate accepts, in order.
func TestSupported(t *testing.T) {
	assert.Equal(t, "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA HS256 HS384 HS512",
		jose.Join(jose.Supported(), " "))
	assert.Equal(t, "RS256, RS384, RS512, PS256, ES256, ES384, EdDSA, HS256, HS384, HS512",
		jose.Join(jose.Generated(), ", "))
}

// TestLookup: each algorithm has the family, curve and secret size its
// name says, and jwx knows it under the same name.
func TestLookup(t *testing.T) {
	for _, a := range jose.Supported() {
		s, ok := jose.Lookup(string(a))
		require.True(t, ok, a)
		assert.Equal(t, a, s.Alg)
		_, known := jwa.LookupSignatureAlgorithm(string(a))
		assert.True(t, known, "jwx knows %s", a)
		switch a[:2] {
		case "RS", "PS":
			assert.Equal(t, jose.RSA, s.Family, a)
			assert.Equal(t, s.Generate, s.RSABits >= 2048, a)
		case "ES":
			assert.Equal(t, jose.EC, s.Family, a)
			assert.Equal(t, map[jose.Alg]string{jose.ES256: "P-256", jose.ES384: "P-384", jose.ES512: "P-521"}[a], s.Curve)
		case "Ed":
			assert.Equal(t, jose.OKP, s.Family, a)
		case "HS":
			assert.Equal(t, jose.HMAC, s.Family, a)
			assert.Equal(t, map[jose.Alg]int{jose.HS256: 32, jose.HS384: 48, jose.HS512: 64}[a], s.MinSecret)
		default:
			t.Fatalf("unexpected algorithm %s", a)
		}
		if s.Family != jose.HMAC {
			assert.Zero(t, s.MinSecret, a)
		}
	}
	for _, name := range []string{"", "none", "rs256", "HS1024", "RS257"} {
		_, ok := jose.Lookup(name)
		assert.False(t, ok, name)
	}
}

// TestOfFamily: a key family maps to the algorithms RFC 7518 allows for it.
func TestOfFamily(t *testing.T) {
	tests := []struct {
		f     jose.Family
		curve string
		want  []jose.Alg
	}{
		{jose.RSA, "", []jose.Alg{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512}},
		{jose.EC, "P-256", []jose.Alg{jose.ES256}},
		{jose.EC, "P-384", []jose.Alg{jose.ES384}},
		{jose.EC, "P-521", []jose.Alg{jose.ES512}},
		{jose.EC, "P-224", nil},
		{jose.OKP, "", []jose.Alg{jose.EdDSA}},
		{jose.HMAC, "", []jose.Alg{jose.HS256, jose.HS384, jose.HS512}},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, jose.OfFamily(tc.f, tc.curve), "%v %s", tc.f, tc.curve)
	}
}
