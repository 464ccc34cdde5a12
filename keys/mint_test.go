package keys

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// genKey generates a key for alg in a temp dir and returns the key file.
func genKey(t *testing.T, alg string) string {
	t.Helper()
	dir := t.TempDir()
	_, err := Generate(alg, "", dir)
	require.NoError(t, err)
	if MinSecretLen(alg) > 0 {
		return filepath.Join(dir, SecretFile)
	}
	return filepath.Join(dir, PrivateKeyFile)
}

// baseOptions returns valid options signing with keyFile and alg.
func baseOptions(keyFile, alg string) MintOptions {
	return MintOptions{
		KeyFile: keyFile, Alg: alg,
		Issuer: "iss", Audience: []string{"aud"}, Subject: "sub",
	}
}

// TestMintErrors covers the inputs Mint must reject.
func TestMintErrors(t *testing.T) {
	rsaFile := genKey(t, "RS256")
	ecFile := genKey(t, "ES256")
	hsFile := genKey(t, "HS256")
	shortSecret := writeTemp(t, []byte("base64:"+strings.Repeat("A", 40)+"\n")) // 30 bytes

	tests := []struct {
		name    string
		mutate  func(*MintOptions)
		wantErr string
	}{
		{name: "rsa key with ES256", mutate: func(o *MintOptions) { o.Alg = "ES256" }, wantErr: "needs an ECDSA P-256 private key, got an RSA private key"},
		{name: "ec P-256 key with ES384", mutate: func(o *MintOptions) { o.KeyFile, o.Alg = ecFile, "ES384" }, wantErr: "got curve P-256"},
		{name: "ec key with EdDSA", mutate: func(o *MintOptions) { o.KeyFile, o.Alg = ecFile, "EdDSA" }, wantErr: "needs an Ed25519 private key"},
		{name: "secret with RS256", mutate: func(o *MintOptions) { o.KeyFile = hsFile }, wantErr: "got a secret"},
		{name: "rsa key with HS256", mutate: func(o *MintOptions) { o.Alg = "HS256" }, wantErr: "needs a secret"},
		{name: "short secret", mutate: func(o *MintOptions) { o.KeyFile, o.Alg = shortSecret, "HS256" }, wantErr: "at least 32 bytes, got 30"},
		{name: "HS256 secret with HS512", mutate: func(o *MintOptions) { o.KeyFile, o.Alg = hsFile, "HS512" }, wantErr: "at least 64 bytes"},
		{name: "unknown alg", mutate: func(o *MintOptions) { o.Alg = "none" }, wantErr: "unsupported algorithm"},
		{name: "override iss", mutate: func(o *MintOptions) { o.Claims = map[string]any{"iss": "evil"} }, wantErr: `"iss" may not override`},
		{name: "override exp", mutate: func(o *MintOptions) { o.Claims = map[string]any{"exp": 1} }, wantErr: `"exp" may not override`},
		{name: "override aud", mutate: func(o *MintOptions) { o.Claims = map[string]any{"aud": "x"} }, wantErr: `"aud" may not override`},
		{name: "scope twice", mutate: func(o *MintOptions) { o.Scope, o.Claims = "a", map[string]any{"scope": "b"} }, wantErr: "conflicts with the scope"},
		{name: "missing issuer", mutate: func(o *MintOptions) { o.Issuer = "" }, wantErr: "issuer"},
		{name: "missing subject", mutate: func(o *MintOptions) { o.Subject = "" }, wantErr: "subject"},
		{name: "missing audience", mutate: func(o *MintOptions) { o.Audience = nil }, wantErr: "audience"},
		{name: "negative ttl", mutate: func(o *MintOptions) { o.TTL = -time.Minute }, wantErr: "ttl"},
		{name: "bad typ", mutate: func(o *MintOptions) { o.Type = "JWE" }, wantErr: "unsupported token type"},
		{name: "missing key file", mutate: func(o *MintOptions) { o.KeyFile = "" }, wantErr: "key file is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOptions(rsaFile, "RS256")
			tc.mutate(&o)
			tok, err := Mint(o)
			require.Error(t, err)
			assert.Empty(t, tok)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

// TestMintClaimsAndHeaders checks audience shapes, typ, kid and TTL default.
func TestMintClaimsAndHeaders(t *testing.T) {
	keyFile := genKey(t, "ES256")
	secretFile := genKey(t, "HS384")
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name    string
		keyFile string
		alg     string
		mutate  func(*MintOptions)
		check   func(t *testing.T, claims map[string]any, hdr jws.Headers)
	}{
		{
			name: "multiple audiences are an array", keyFile: keyFile, alg: "ES256",
			mutate: func(o *MintOptions) { o.Audience = []string{"a", "b"} },
			check: func(t *testing.T, c map[string]any, _ jws.Headers) {
				assert.Equal(t, []any{"a", "b"}, c["aud"])
			},
		},
		{
			name: "default ttl and no scope", keyFile: keyFile, alg: "ES256",
			check: func(t *testing.T, c map[string]any, _ jws.Headers) {
				assert.EqualValues(t, now.Add(time.Hour).Unix(), c["exp"])
				assert.NotContains(t, c, "scope")
			},
		},
		{
			name: "at+jwt and explicit kid", keyFile: keyFile, alg: "ES256",
			mutate: func(o *MintOptions) { o.Type, o.Kid = "at+jwt", "k1" },
			check: func(t *testing.T, _ map[string]any, h jws.Headers) {
				typ, _ := h.Type()
				assert.Equal(t, "at+jwt", typ)
				kid, _ := h.KeyID()
				assert.Equal(t, "k1", kid)
			},
		},
		{
			name: "extra claims of several types", keyFile: secretFile, alg: "HS384",
			mutate: func(o *MintOptions) {
				o.Claims = map[string]any{"n": 3, "ok": true, "roles": []string{"x"}, "jti": "id-1"}
			},
			check: func(t *testing.T, c map[string]any, _ jws.Headers) {
				assert.EqualValues(t, 3, c["n"])
				assert.Equal(t, true, c["ok"])
				assert.Equal(t, []any{"x"}, c["roles"])
				assert.Equal(t, "id-1", c["jti"])
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOptions(tc.keyFile, tc.alg)
			o.Now = now
			if tc.mutate != nil {
				tc.mutate(&o)
			}
			tok, err := Mint(o)
			require.NoError(t, err)
			msg, err := jws.ParseString(tok)
			require.NoError(t, err)
			tc.check(t, claimsOf(t, msg.Payload()), headersOf(t, tok))
		})
	}
}
