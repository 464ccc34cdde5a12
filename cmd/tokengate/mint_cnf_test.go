package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/keys"
)

// TestTokenMintConfirmation: --dpop-key, --cnf-jkt and --cnf-x5t put the
// RFC 9449 / RFC 8705 confirmation into the token.
func TestTokenMintConfirmation(t *testing.T) {
	dir := t.TempDir()
	signDir, dpopDir := filepath.Join(dir, "sign"), filepath.Join(dir, "dpop")
	for _, d := range []string{signDir, dpopDir} {
		code, _, errOut := runCmd(runKeysGenerate, "--alg", "ES256", "--out", d)
		require.Equal(t, 0, code, errOut)
	}
	dpopPriv, err := keys.LoadPrivateKey(filepath.Join(dpopDir, "private.pem"))
	require.NoError(t, err)
	jkt, err := keys.Thumbprint(dpopPriv)
	require.NoError(t, err)
	certFile, x5t := writeCert(t, dir)

	base := []string{"--key", filepath.Join(signDir, "private.pem"), "--alg", "ES256", "--iss", "i", "--aud", "a", "--sub", "s"}
	cnfOf := func(t *testing.T, args ...string) any {
		t.Helper()
		code, out, errOut := runCmd(runTokenMint, append(append([]string{}, base...), args...)...)
		require.Equal(t, 0, code, errOut)
		msg, err := jws.ParseString(strings.TrimSpace(out))
		require.NoError(t, err)
		var c map[string]any
		require.NoError(t, json.Unmarshal(msg.Payload(), &c))
		return c["cnf"]
	}
	assert.Equal(t, map[string]any{"jkt": jkt}, cnfOf(t, "--dpop-key", filepath.Join(dpopDir, "private.pem")))
	assert.Equal(t, map[string]any{"jkt": jkt}, cnfOf(t, "--dpop-key", filepath.Join(dpopDir, "public.pem")))
	assert.Equal(t, map[string]any{"jkt": "given"}, cnfOf(t, "--cnf-jkt", "given"))
	assert.Equal(t, map[string]any{"x5t#S256": x5t}, cnfOf(t, "--cnf-x5t", certFile))
	assert.Equal(t, map[string]any{"jkt": jkt, "x5t#S256": x5t}, cnfOf(t, "--dpop-key", filepath.Join(dpopDir, "public.pem"), "--cnf-x5t", certFile))
	assert.Nil(t, cnfOf(t))

	for _, tc := range []struct {
		args    []string
		want    int
		wantErr string
	}{
		{[]string{"--cnf-jkt", "x", "--dpop-key", filepath.Join(dpopDir, "public.pem")}, 2, "mutually exclusive"},
		{[]string{"--dpop-key", filepath.Join(dir, "nope.pem")}, 1, "--dpop-key"},
		{[]string{"--cnf-x5t", filepath.Join(dpopDir, "public.pem")}, 1, "--cnf-x5t"},
	} {
		code, out, errOut := runCmd(runTokenMint, append(append([]string{}, base...), tc.args...)...)
		assert.Equal(t, tc.want, code, errOut)
		assert.Contains(t, errOut, tc.wantErr)
		assert.Empty(t, out)
	}
}

// writeCert writes a self-signed client certificate and returns its path
// and x5t#S256.
func writeCert(t *testing.T, dir string) (string, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	path := filepath.Join(dir, "client.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	sum := sha256.Sum256(der)
	return path, base64.RawURLEncoding.EncodeToString(sum[:])
}
