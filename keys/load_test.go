package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writePEM writes PEM blocks to a fresh file and returns its path.
func writePEM(t *testing.T, blocks ...*pem.Block) string {
	t.Helper()
	var data []byte
	for _, b := range blocks {
		data = append(data, pem.EncodeToMemory(b)...)
	}
	return writeTemp(t, data)
}

// writeTemp writes data to a fresh 0600 file and returns its path.
func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

// TestLoadPrivateKey covers the accepted and rejected key file formats.
func TestLoadPrivateKey(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	ecDER, err := x509.MarshalECPrivateKey(ecKey)
	require.NoError(t, err)
	edDER, err := x509.MarshalPKCS8PrivateKey(edKey)
	require.NoError(t, err)
	pubDER, err := x509.MarshalPKIXPublicKey(ecKey.Public())
	require.NoError(t, err)

	tests := []struct {
		name    string
		path    string
		want    any
		wantErr string
	}{
		{name: "pkcs1 rsa", path: writePEM(t, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), want: rsaKey},
		{name: "sec1 ec", path: writePEM(t, &pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), want: ecKey},
		{name: "sec1 ec with params", path: writePEM(t, &pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}}, &pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), want: ecKey},
		{name: "pkcs8 ed25519", path: writePEM(t, &pem.Block{Type: "PRIVATE KEY", Bytes: edDER}), want: edKey},
		{name: "secret", path: writeTemp(t, []byte("base64:AAECAw==\n")), want: []byte{0, 1, 2, 3}},
		{name: "public key", path: writePEM(t, &pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), wantErr: "not a private key"},
		{name: "corrupt pkcs8", path: writePEM(t, &pem.Block{Type: "PRIVATE KEY", Bytes: []byte("garbage-der-bytes")}), wantErr: "PKCS#8"},
		{name: "truncated pem", path: writeTemp(t, []byte("-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZQ==\n")), wantErr: "no PEM private key"},
		{name: "bad secret", path: writeTemp(t, []byte("base64:%%%%\n")), wantErr: "not valid base64"},
		{name: "missing file", path: filepath.Join(t.TempDir(), "nope"), wantErr: "reading key file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadPrivateKey(tc.path)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.Contains(t, err.Error(), tc.path, "error names the file")
				assert.NotContains(t, err.Error(), "garbage")
				assert.NotContains(t, err.Error(), "%%%%")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
