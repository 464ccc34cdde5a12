package keys

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGenerateMintVerify generates a key for every algorithm, mints a token
// with it and verifies the token with the published key material.
func TestGenerateMintVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		alg       string
		symmetric bool
	}{
		{alg: "RS256"}, {alg: "RS384"}, {alg: "RS512"}, {alg: "PS256"},
		{alg: "ES256"}, {alg: "ES384"}, {alg: "EdDSA"},
		{alg: "HS256", symmetric: true}, {alg: "HS384", symmetric: true}, {alg: "HS512", symmetric: true},
	}
	require.Len(t, tests, len(Algorithms()))
	for _, tc := range tests {
		t.Run(tc.alg, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "out")
			written, err := Generate(tc.alg, "", dir)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o700), fileMode(t, dir))

			keyFile := filepath.Join(dir, PrivateKeyFile)
			if tc.symmetric {
				keyFile = filepath.Join(dir, SecretFile)
				require.Equal(t, []string{keyFile}, written)
				assert.Equal(t, os.FileMode(0o600), fileMode(t, keyFile))
				key, err := LoadPrivateKey(keyFile)
				require.NoError(t, err)
				assert.Len(t, key, MinSecretLen(tc.alg))
			} else {
				require.Equal(t, []string{
					keyFile,
					filepath.Join(dir, PublicKeyFile),
					filepath.Join(dir, JWKSFile),
				}, written)
				assert.Equal(t, os.FileMode(0o600), fileMode(t, keyFile))
				for _, pub := range written[1:] {
					// 0644 at most (the umask may remove group/other read).
					m := fileMode(t, pub)
					assert.Equal(t, os.FileMode(0o600), m&0o700, pub)
					assert.Zero(t, m&^0o644, pub)
				}
			}

			token, err := Mint(MintOptions{
				KeyFile:  keyFile,
				Alg:      tc.alg,
				Issuer:   "https://issuer.example",
				Audience: []string{"api"},
				Subject:  "user-1",
				Scope:    "read write",
				TTL:      10 * time.Minute,
				Claims:   map[string]any{"tenant": "acme"},
				Now:      now,
			})
			require.NoError(t, err)

			alg := mustAlg(t, tc.alg)
			var payloads [][]byte
			if tc.symmetric {
				secret, err := LoadPrivateKey(keyFile)
				require.NoError(t, err)
				p, err := jws.Verify([]byte(token), jws.WithKey(alg, secret))
				require.NoError(t, err)
				payloads = append(payloads, p)
				_, hasKid := headersOf(t, token).KeyID()
				assert.False(t, hasKid, "HMAC tokens get no derived kid")
			} else {
				p, err := jws.Verify([]byte(token), jws.WithKey(alg, readPublicPEM(t, dir)))
				require.NoError(t, err, "verify with public.pem")
				payloads = append(payloads, p)
				p, err = jws.Verify([]byte(token), jws.WithKeySet(readJWKS(t, dir)))
				require.NoError(t, err, "verify with jwks.json")
				payloads = append(payloads, p)
			}
			for _, p := range payloads {
				c := claimsOf(t, p)
				assert.Equal(t, "https://issuer.example", c["iss"])
				assert.Equal(t, "user-1", c["sub"])
				assert.Equal(t, "api", c["aud"])
				assert.Equal(t, "read write", c["scope"])
				assert.Equal(t, "acme", c["tenant"])
				assert.EqualValues(t, now.Unix(), c["iat"])
				assert.EqualValues(t, now.Add(10*time.Minute).Unix(), c["exp"])
				assert.NotContains(t, c, "nbf")
			}
			typ, _ := headersOf(t, token).Type()
			assert.Equal(t, "JWT", typ)
		})
	}
}

// TestGenerateJWKSContents checks the published JWK carries kid, alg, use
// and no private material.
func TestGenerateJWKSContents(t *testing.T) {
	tests := []struct {
		name, alg, kid string
	}{
		{name: "explicit kid", alg: "ES256", kid: "key-2024"},
		{name: "thumbprint kid", alg: "EdDSA"},
		{name: "rsa thumbprint kid", alg: "PS256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Generate(tc.alg, tc.kid, dir)
			require.NoError(t, err)
			set := readJWKS(t, dir)
			require.Equal(t, 1, set.Len())
			k, _ := set.Key(0)

			priv, err := LoadPrivateKey(filepath.Join(dir, PrivateKeyFile))
			require.NoError(t, err)
			want := tc.kid
			if want == "" {
				want, err = Thumbprint(priv)
				require.NoError(t, err)
			}
			kid, _ := k.KeyID()
			assert.Equal(t, want, kid)
			alg, _ := k.Algorithm()
			assert.Equal(t, tc.alg, alg.String())
			use, _ := k.KeyUsage()
			assert.Equal(t, "sig", use)
			isPrivate, err := jwk.IsPrivateKey(k)
			require.NoError(t, err)
			assert.False(t, isPrivate)

			raw, err := os.ReadFile(filepath.Join(dir, JWKSFile))
			require.NoError(t, err)
			assert.NotContains(t, string(raw), `"d"`)

			// Mint's default kid matches the published one.
			token, err := Mint(MintOptions{
				KeyFile: filepath.Join(dir, PrivateKeyFile), Alg: tc.alg, Kid: tc.kid,
				Issuer: "i", Audience: []string{"a"}, Subject: "s",
			})
			require.NoError(t, err)
			hkid, _ := headersOf(t, token).KeyID()
			assert.Equal(t, want, hkid)
		})
	}
}

// TestGenerateRefusesOverwrite checks no existing file is replaced.
func TestGenerateRefusesOverwrite(t *testing.T) {
	tests := []struct {
		alg, existing string
	}{
		{alg: "ES256", existing: PrivateKeyFile},
		{alg: "ES256", existing: JWKSFile},
		{alg: "HS256", existing: SecretFile},
	}
	for _, tc := range tests {
		t.Run(tc.alg+"/"+tc.existing, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tc.existing)
			require.NoError(t, os.WriteFile(path, []byte("keep me"), 0o600))

			written, err := Generate(tc.alg, "", dir)
			require.Error(t, err)
			assert.Nil(t, written)
			assert.Contains(t, err.Error(), path)

			got, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, "keep me", string(got))
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Len(t, entries, 1, "nothing else may be written")
		})
	}
}

// TestGenerateUnknownAlg checks unsupported algorithms are rejected.
func TestGenerateUnknownAlg(t *testing.T) {
	for _, alg := range []string{"", "none", "rs256", "ES512", "PS384"} {
		t.Run(alg, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			_, err := Generate(alg, "", dir)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "unsupported algorithm")
			assert.NoDirExists(t, dir)
		})
	}
}
