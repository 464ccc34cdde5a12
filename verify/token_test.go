package verify_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/verify"
)

// TestParseToken: ParseToken never fails; it tells opaque tokens from
// JWS-shaped ones, decodes the header and claims of the latter without
// verifying them, and remembers why a JWS-shaped token does not decode.
func TestParseToken(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, "ES256", "k1")
	valid := k.mint(t, map[string]any{"typ": "at+jwt"}, claims(nil))
	parts := strings.Split(valid, ".")
	hdr := func(h string) string { return b64([]byte(h)) + "." + parts[1] + "." + parts[2] }
	payload := func(p string) string { return parts[0] + "." + p + "." + parts[2] }
	tests := []struct {
		name      string
		raw       string
		jws       bool // JWS field
		looksLike bool // LooksLikeJWT
		malformed error
		crit      bool
	}{
		{name: "valid", raw: valid, jws: true, looksLike: true},
		{name: "opaque", raw: "2YotnFZFEjr1zCsicMWpAA", malformed: verify.ErrTokenMalformed},
		{name: "empty", raw: "", malformed: verify.ErrTokenMalformed},
		{name: "one dot", raw: "a.b", malformed: verify.ErrTokenMalformed},
		{name: "JWE shape (five segments)", raw: "a.b.c.d.e", malformed: verify.ErrTokenMalformed},
		{name: "three dots", raw: valid + ".x", malformed: verify.ErrTokenMalformed},
		{name: "only dots", raw: "..", looksLike: true, malformed: verify.ErrTokenMalformed},
		{name: "header not base64", raw: "!!!." + parts[1] + "." + parts[2], looksLike: true, malformed: verify.ErrTokenMalformed},
		{name: "header not JSON", raw: hdr("not json"), looksLike: true, malformed: verify.ErrTokenMalformed},
		{name: "header an array", raw: hdr(`["alg","ES256"]`), looksLike: true, malformed: verify.ErrTokenMalformed},
		{name: "header without alg", raw: hdr(`{"kid":"k1"}`), looksLike: true, malformed: verify.ErrTokenMalformed},
		{name: "alg not a string", raw: hdr(`{"alg":256}`), looksLike: true, malformed: verify.ErrTokenMalformed},
		{name: "kid not a string", raw: hdr(`{"alg":"ES256","kid":{"x":1}}`), jws: true, looksLike: true, malformed: verify.ErrTokenMalformed},
		{name: "typ not a string", raw: hdr(`{"alg":"ES256","typ":null}`), jws: true, looksLike: true, malformed: verify.ErrTokenMalformed},
		{name: "crit", raw: hdr(`{"alg":"ES256","crit":["x"],"x":1}`), jws: true, looksLike: true, crit: true},
		{name: "b64 without crit", raw: hdr(`{"alg":"ES256","b64":false}`), jws: true, looksLike: true, crit: true},
		{name: "payload not base64url", raw: payload("a+b/"), jws: true, looksLike: true, malformed: verify.ErrTokenMalformed},
		{name: "payload padded", raw: payload(parts[1] + "=="), jws: true, looksLike: true, malformed: verify.ErrTokenMalformed},
		{name: "payload not JSON", raw: payload(b64([]byte("hello"))), jws: true, looksLike: true, malformed: verify.ErrTokenMalformed},
		{name: "payload a JSON array", raw: payload(b64([]byte(`[1,2]`))), jws: true, looksLike: true, malformed: verify.ErrTokenMalformed},
		{name: "exp a string", raw: payload(b64([]byte(`{"exp":"soon"}`))), jws: true, looksLike: true, malformed: verify.ErrTokenMalformed},
		{name: "aud a number", raw: payload(b64([]byte(`{"aud":1}`))), jws: true, looksLike: true, malformed: verify.ErrTokenMalformed},
		{name: "iss an object", raw: payload(b64([]byte(`{"iss":{}}`))), jws: true, looksLike: true, malformed: verify.ErrTokenMalformed},
		{name: "empty claims object", raw: payload(b64([]byte(`{}`))), jws: true, looksLike: true},
		{name: "signature not base64url", raw: parts[0] + "." + parts[1] + ".a+b/", jws: true, looksLike: true, malformed: verify.ErrTokenMalformed},
		{name: "signature of impossible length", raw: parts[0] + "." + parts[1] + ".abcde", jws: true, looksLike: true, malformed: verify.ErrTokenMalformed},
		{name: "empty signature", raw: parts[0] + "." + parts[1] + ".", jws: true, looksLike: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok := verify.ParseToken(tc.raw)
			require.Equal(t, tc.raw, tok.Raw)
			require.Equal(t, tc.jws, tok.JWS, "JWS")
			require.Equal(t, tc.looksLike, tok.LooksLikeJWT(), "LooksLikeJWT")
			require.Equal(t, tc.crit, tok.Crit, "Crit")
			err := tok.Malformed()
			requireCode(t, tc.malformed, err)
			if err == nil {
				require.NotNil(t, tok.Claims)
				require.NotEmpty(t, tok.Payload)
			}
		})
	}

	t.Run("fields of a valid token", func(t *testing.T) {
		t.Parallel()
		tok := verify.ParseToken(valid)
		require.Equal(t, "ES256", tok.Alg)
		require.Equal(t, "k1", tok.Kid)
		require.Equal(t, "at+jwt", tok.Typ)
		require.Equal(t, testIssuer, tok.Claims.Issuer)
		require.Equal(t, "alice", tok.Claims.Subject)
		require.Equal(t, verify.StringList{testAudience}, tok.Claims.Audience)
		require.Equal(t, testNow.Add(3600e9).Unix(), tok.Claims.Expiry.Unix())
	})
}

// TestMalformedErrorsHideInput: the reasons ParseToken gives never echo the
// token's bytes, so they are safe in logs.
func TestMalformedErrorsHideInput(t *testing.T) {
	t.Parallel()
	secret := "s3cr3t-claim-value"
	k := newTestKey(t, "ES256", "k1")
	parts := strings.Split(k.mint(t, nil, claims(nil)), ".")
	tests := []struct {
		name string
		raw  string
	}{
		{"bad JSON", parts[0] + "." + b64([]byte(`{"sub":"`+secret+`"`)) + "." + parts[2]},
		{"wrong type", parts[0] + "." + b64([]byte(`{"exp":"`+secret+`"}`)) + "." + parts[2]},
		{"bad header", b64([]byte(`{"alg":"`+secret)) + "." + parts[1] + "." + parts[2]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := verify.ParseToken(tc.raw).Malformed()
			requireCode(t, verify.ErrTokenMalformed, err)
			require.NotContains(t, err.Error(), secret)
			require.NotContains(t, err.Error(), parts[2])
		})
	}
}
