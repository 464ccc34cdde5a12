package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMintDPoPProof: the proof carries the RFC 9449 header and claims and
// verifies with the public key in its own jwk header.
func TestMintDPoPProof(t *testing.T) {
	for _, alg := range []string{"ES256", "ES384", "EdDSA", "RS256", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			priv, err := LoadPrivateKey(genKey(t, alg))
			require.NoError(t, err)
			iat := time.Unix(1_800_000_000, 0)
			proof, err := MintDPoPProof(priv, alg, "POST", "https://rs.example/mcp", "tok", "n-1", iat, "jti-1")
			require.NoError(t, err)

			h := headersOf(t, proof)
			typ, _ := h.Type()
			assert.Equal(t, "dpop+jwt", typ)
			key, ok := h.JWK()
			require.True(t, ok)
			private, err := jwk.IsPrivateKey(key)
			require.NoError(t, err)
			assert.False(t, private, "jwk header holds the public key only")
			tp, err := key.Thumbprint(crypto.SHA256)
			require.NoError(t, err)
			want, err := Thumbprint(priv)
			require.NoError(t, err)
			assert.Equal(t, want, base64.RawURLEncoding.EncodeToString(tp))

			payload, err := jws.Verify([]byte(proof), jws.WithKey(mustAlg(t, alg), key))
			require.NoError(t, err)
			sum := sha256.Sum256([]byte("tok"))
			assert.Equal(t, map[string]any{
				"jti": "jti-1", "htm": "POST", "htu": "https://rs.example/mcp", "iat": float64(iat.Unix()),
				"ath": base64.RawURLEncoding.EncodeToString(sum[:]), "nonce": "n-1",
			}, claimsOf(t, payload))
		})
	}
}

func TestMintDPoPProofDefaults(t *testing.T) {
	priv, err := LoadPrivateKey(genKey(t, "ES256"))
	require.NoError(t, err)
	p1, err := MintDPoPProof(priv, "ES256", "GET", "https://rs.example/", "", "", time.Time{}, "")
	require.NoError(t, err)
	p2, err := MintDPoPProof(priv, "ES256", "GET", "https://rs.example/", "", "", time.Time{}, "")
	require.NoError(t, err)
	c1 := claimsOf(t, payloadOf(t, p1))
	c2 := claimsOf(t, payloadOf(t, p2))
	assert.NotContains(t, c1, "ath")
	assert.NotContains(t, c1, "nonce")
	assert.NotEqual(t, c1["jti"], c2["jti"], "a fresh jti each time")
	assert.Len(t, c1["jti"], 22)

	_, err = MintDPoPProof([]byte("0123456789abcdef0123456789abcdef"), "HS256", "GET", "https://rs.example/", "", "", time.Time{}, "")
	assert.ErrorContains(t, err, "asymmetric")
	_, err = MintDPoPProof(priv, "EdDSA", "GET", "https://rs.example/", "", "", time.Time{}, "")
	assert.ErrorContains(t, err, "needs an Ed25519 private key")
}

func payloadOf(t *testing.T, compact string) []byte {
	t.Helper()
	msg, err := jws.ParseString(compact)
	require.NoError(t, err)
	return msg.Payload()
}

// TestKeyThumbprintFile reads private and public PEM files alike.
func TestKeyThumbprintFile(t *testing.T) {
	dir := t.TempDir()
	_, err := Generate("ES256", "", dir)
	require.NoError(t, err)
	priv, err := LoadPrivateKey(filepath.Join(dir, PrivateKeyFile))
	require.NoError(t, err)
	want, err := Thumbprint(priv)
	require.NoError(t, err)
	for _, f := range []string{PrivateKeyFile, PublicKeyFile} {
		got, err := KeyThumbprintFile(filepath.Join(dir, f))
		require.NoError(t, err, f)
		assert.Equal(t, want, got, f)
	}
	_, err = KeyThumbprintFile(genKey(t, "HS256"))
	assert.ErrorContains(t, err, "asymmetric")
	_, err = KeyThumbprintFile(filepath.Join(dir, "missing.pem"))
	assert.Error(t, err)
}

// TestCertificateThumbprintFile: PEM and DER give base64url(SHA-256(DER)).
func TestCertificateThumbprintFile(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "c"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	sum := sha256.Sum256(der)
	want := base64.RawURLEncoding.EncodeToString(sum[:])

	dir := t.TempDir()
	pemFile, derFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.der")
	require.NoError(t, os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(derFile, der, 0o600))
	for _, f := range []string{pemFile, derFile} {
		got, err := CertificateThumbprintFile(f)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err = CertificateThumbprintFile(genKey(t, "ES256"))
	assert.ErrorContains(t, err, "no PEM CERTIFICATE block")
	bad := filepath.Join(dir, "bad.der")
	require.NoError(t, os.WriteFile(bad, []byte("junk"), 0o600))
	_, err = CertificateThumbprintFile(bad)
	assert.Error(t, err)
}

// TestMintConfirmation: --cnf-jkt / --cnf-x5t end up in the cnf claim, and
// an extra "cnf" claim cannot fight them.
func TestMintConfirmation(t *testing.T) {
	keyFile := genKey(t, "ES256")
	o := baseOptions(keyFile, "ES256")
	o.CnfJKT, o.CnfX5T = "jkt-value", "x5t-value"
	tok, err := Mint(o)
	require.NoError(t, err)
	c := claimsOf(t, payloadOf(t, tok))
	assert.Equal(t, map[string]any{"jkt": "jkt-value", "x5t#S256": "x5t-value"}, c["cnf"])

	o.CnfX5T = ""
	tok, err = Mint(o)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"jkt": "jkt-value"}, claimsOf(t, payloadOf(t, tok))["cnf"])

	o.Claims = map[string]any{"cnf": map[string]any{"jkt": "other"}}
	_, err = Mint(o)
	assert.ErrorContains(t, err, `"cnf" conflicts with the cnf options`)

	o = baseOptions(keyFile, "ES256")
	o.Claims = map[string]any{"cnf": map[string]any{"jkt": "free-form"}}
	tok, err = Mint(o)
	require.NoError(t, err, "without cnf options an extra cnf claim is allowed")
	assert.Equal(t, map[string]any{"jkt": "free-form"}, claimsOf(t, payloadOf(t, tok))["cnf"])
}
