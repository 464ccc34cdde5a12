package dpop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/keys"
)

// testCert is a client certificate issued by a test CA.
type testCert struct {
	der []byte
	pem []byte
}

// newCA returns a self-signed CA and a function issuing client certs.
func newCA(t *testing.T) func(cn string) testCert {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	serial := int64(1)
	return func(cn string) testCert {
		serial++
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		require.NoError(t, err)
		return testCert{der: der, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	}
}

func hexHash(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

// TestCertificateThumbprint: the x5t#S256 from DER, PEM, Envoy's
// source.certificate and the keys package's file helper all agree.
func TestCertificateThumbprint(t *testing.T) {
	issue := newCA(t)
	c := issue("client")
	sum := sha256.Sum256(c.der)
	want := b64(sum[:])
	assert.Equal(t, want, CertificateThumbprint(c.der))

	got, err := ThumbprintFromPEM(c.pem)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	got, err = ThumbprintFromEnvoy(url.QueryEscape(string(c.pem)))
	require.NoError(t, err)
	assert.Equal(t, want, got)

	path := filepath.Join(t.TempDir(), "client.pem")
	require.NoError(t, os.WriteFile(path, c.pem, 0o600))
	got, err = keys.CertificateThumbprintFile(path)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	for _, tt := range []struct {
		in   string
		want error
	}{
		{"", ErrCertificateMissing},
		{"%zz", ErrCertificateMalformed},
		{url.QueryEscape("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), ErrCertificateMalformed},
		{"not pem", ErrCertificateMalformed},
	} {
		_, err := ThumbprintFromEnvoy(tt.in)
		assert.ErrorIs(t, err, tt.want, tt.in)
		assert.ErrorIs(t, err, ErrCertificateMissing, "all are class client_certificate_missing")
	}
}

// TestThumbprintFromXFCC: the last element wins; Cert is preferred and
// must agree with Hash; Hash alone suffices.
func TestThumbprintFromXFCC(t *testing.T) {
	issue := newCA(t)
	client, front := issue("client"), issue("front")
	certOf := func(c testCert) string { return `"` + url.QueryEscape(string(c.pem)) + `"` }
	want := CertificateThumbprint(client.der)

	tests := []struct {
		name   string
		header string
		want   string
		err    error
	}{
		{name: "cert and hash", header: "By=spiffe://cluster.local/ns/a/sa/tg;Hash=" + hexHash(client.der) + ";Cert=" + certOf(client) + `;Subject="CN=client,O=x";URI=spiffe://cluster.local/ns/a/sa/c`, want: want},
		{name: "cert unquoted", header: "Cert=" + url.QueryEscape(string(client.pem)), want: want},
		{name: "hash only (Istio default)", header: "By=spiffe://x;Hash=" + hexHash(client.der) + `;Subject="";URI=spiffe://y`, want: want},
		{name: "upper-case hex hash", header: "Hash=" + hexUpper(hexHash(client.der)), want: want},
		{name: "last element wins", header: "Hash=" + hexHash(front.der) + ";Cert=" + certOf(front) + ",Hash=" + hexHash(client.der) + ";Cert=" + certOf(client), want: want},
		{name: "earlier element ignored", header: "Hash=" + hexHash(client.der) + ",Hash=" + hexHash(front.der), want: CertificateThumbprint(front.der)},
		{name: "comma and semicolon inside quotes", header: `Subject="CN=a,O=b;c";Hash=` + hexHash(client.der), want: want},
		{name: "escaped quote inside quotes", header: `Subject="CN=\"a\"";Hash=` + hexHash(client.der), want: want},
		{name: "hash disagrees with cert", header: "Hash=" + hexHash(front.der) + ";Cert=" + certOf(client), err: ErrCertificateMalformed},
		{name: "bad hash", header: "Hash=abcd", err: ErrCertificateMalformed},
		{name: "bad cert", header: `Cert="junk"`, err: ErrCertificateMalformed},
		{name: "unterminated quote", header: `Subject="CN=a;Hash=` + hexHash(client.der), err: ErrCertificateMalformed},
		{name: "pair without =", header: "Hash", err: ErrCertificateMalformed},
		{name: "no cert in last element", header: "Hash=" + hexHash(client.der) + `,By=spiffe://x;Subject="CN=a"`, err: ErrCertificateMissing},
		{name: "empty", header: " ", err: ErrCertificateMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ThumbprintFromXFCC(tt.header)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				assert.Equal(t, tt.err.(*Error).Reason(), asError(t, err).Reason())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func hexUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// TestCheckCertificateBinding: cnf.x5t#S256 against the connection's cert.
func TestCheckCertificateBinding(t *testing.T) {
	issue := newCA(t)
	a, b := CertificateThumbprint(issue("a").der), CertificateThumbprint(issue("b").der)
	assert.NoError(t, CheckCertificateBinding(a, a))
	err := CheckCertificateBinding(a, b)
	require.ErrorIs(t, err, ErrCertificateMismatch)
	assert.Equal(t, CodeCertificateMismatch, asError(t, err).Code())
	require.ErrorIs(t, CheckCertificateBinding(a, ""), ErrCertificateMissing)
	require.ErrorIs(t, CheckCertificateBinding("", b), ErrCertificateMismatch)
}
