package keys

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/stretchr/testify/require"
)

// readPublicPEM parses dir/public.pem as a PKIX public key.
func readPublicPEM(t *testing.T, dir string) any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, PublicKeyFile))
	require.NoError(t, err)
	block, rest := pem.Decode(data)
	require.NotNil(t, block)
	require.Empty(t, rest)
	require.Equal(t, "PUBLIC KEY", block.Type)
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	require.NoError(t, err)
	return pub
}

// readJWKS parses dir/jwks.json as a JWK Set.
func readJWKS(t *testing.T, dir string) jwk.Set {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, JWKSFile))
	require.NoError(t, err)
	set, err := jwk.Parse(data)
	require.NoError(t, err)
	return set
}

// mustAlg returns the jwx algorithm for name.
func mustAlg(t *testing.T, name string) jwa.SignatureAlgorithm {
	t.Helper()
	a, ok := jwa.LookupSignatureAlgorithm(name)
	require.True(t, ok, name)
	return a
}

// claimsOf decodes a verified JWS payload.
func claimsOf(t *testing.T, payload []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(payload, &m))
	return m
}

// headersOf returns the protected headers of a compact JWS.
func headersOf(t *testing.T, token string) jws.Headers {
	t.Helper()
	msg, err := jws.ParseString(token)
	require.NoError(t, err)
	require.Len(t, msg.Signatures(), 1)
	return msg.Signatures()[0].ProtectedHeaders()
}

// fileMode returns the permission bits of path.
func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Mode().Perm()
}
