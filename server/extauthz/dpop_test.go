package extauthz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/authz"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/keys"
)

// TestSenderConstrainedTokens runs DPoP-bound and certificate-bound tokens
// through Check (contract section 11): each row breaks one rule, and the
// answer names it.
func TestSenderConstrainedTokens(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []struct{ alg, name string }{{"ES256", "idp"}, {"ES256", "client"}, {"EdDSA", "other-client"}} {
		_, err := keys.Generate(k.alg, k.name, filepath.Join(dir, k.name))
		require.NoError(t, err)
	}
	cfgText := `
verifiers:
  idp:
    type: jwt
    issuer: https://idp.example
    public_key_file: ` + filepath.Join(dir, "idp", keys.PublicKeyFile) + `
routes:
  - name: dpop-only
    match: {path_prefix: /dpop}
    verifiers: [idp]
    resource: https://mcp.example.com/dpop
    require_dpop: true
  - name: mtls
    match: {path_prefix: /mtls}
    verifiers: [idp]
    resource: https://mcp.example.com/mtls
    trust_forwarded_client_cert: true
  - name: mcp
    match: {path_prefix: /mcp}
    verifiers: [idp]
    resource: https://mcp.example.com/mcp
`
	path := filepath.Join(dir, "tokengate.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfgText), 0o600))
	cfg, err := config.Load(path, nil)
	require.NoError(t, err)
	p, err := authz.Build(cfg, authz.BuildOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return testNow }})
	require.NoError(t, err)
	svc := newService(p, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)

	jkt, err := keys.KeyThumbprintFile(filepath.Join(dir, "client", keys.PrivateKeyFile))
	require.NoError(t, err)
	clientKey, err := keys.LoadPrivateKey(filepath.Join(dir, "client", keys.PrivateKeyFile))
	require.NoError(t, err)
	otherKey, err := keys.LoadPrivateKey(filepath.Join(dir, "other-client", keys.PrivateKeyFile))
	require.NoError(t, err)
	mint := func(aud string, mutate func(*keys.MintOptions)) string {
		o := keys.MintOptions{
			KeyFile: filepath.Join(dir, "idp", keys.PrivateKeyFile), Alg: "ES256", Kid: "idp",
			Issuer: "https://idp.example", Audience: []string{aud}, Subject: "alice", Scope: "mcp:read", Now: testNow, TTL: time.Hour,
		}
		if mutate != nil {
			mutate(&o)
		}
		tok, err := keys.Mint(o)
		require.NoError(t, err)
		return tok
	}
	bound := func(aud string) string { return mint(aud, func(o *keys.MintOptions) { o.CnfJKT = jkt }) }
	proof := func(key any, alg, method, url, token string) string {
		pr, err := keys.MintDPoPProof(key, alg, method, url, token, "", testNow, "")
		require.NoError(t, err)
		return pr
	}
	boundMCP, boundDPoP, plainDPoP := bound("https://mcp.example.com/mcp"), bound("https://mcp.example.com/dpop"), mint("https://mcp.example.com/dpop", nil)
	replayed := proof(clientKey, "ES256", "POST", "https://mcp.example.com/mcp", boundMCP)
	x5t := "uo5Z0bfOQuGG9lKGpjIfu8f8zXGtj6pJbUSe7nUxm2Y"
	certBound := mint("https://mcp.example.com/mtls", func(o *keys.MintOptions) { o.CnfX5T = x5t })
	xfcc := func(hash string) string { return `By=spiffe://mesh/ns/mcp;Hash=` + hash + `;Subject="CN=client"` }
	// A client certificate as Envoy's include_peer_certificate sends it.
	certPEM, certX5T := clientCertificate(t)
	peerBound := mint("https://mcp.example.com/mcp", func(o *keys.MintOptions) { o.CnfX5T = certX5T })

	type row struct {
		name, path, auth string
		headers          map[string]string
		status           int
		challenge        string // a prefix of WWW-Authenticate
		code             string // error_description
	}
	rows := []row{
		{"a certificate-bound token over the connection with its certificate", "/mcp", "Bearer " + peerBound, map[string]string{"@peer": url.QueryEscape(certPEM)}, 0, "", ""},
		{"a certificate-bound token over a connection without one", "/mcp", "Bearer " + peerBound, nil, 401, `Bearer error="invalid_token"`, "client_certificate_missing"},
		{"a bound token with a fresh proof", "/mcp", "DPoP " + boundMCP, map[string]string{"dpop": replayed}, 0, "", ""},
		{"the same proof replayed", "/mcp", "DPoP " + boundMCP, map[string]string{"dpop": replayed}, 401, `DPoP error="invalid_dpop_proof"`, "invalid_dpop_proof"},
		{"a fresh proof again: the cached token still needs its proof", "/mcp", "DPoP " + boundMCP,
			map[string]string{"dpop": proof(clientKey, "ES256", "POST", "https://mcp.example.com/mcp", boundMCP)}, 0, "", ""},
		{"a proof for another URL", "/mcp", "DPoP " + boundMCP,
			map[string]string{"dpop": proof(clientKey, "ES256", "POST", "https://mcp.example.com/other", boundMCP)}, 401, `DPoP error="invalid_dpop_proof"`, "invalid_dpop_proof"},
		{"a proof for another method", "/mcp", "DPoP " + boundMCP,
			map[string]string{"dpop": proof(clientKey, "ES256", "GET", "https://mcp.example.com/mcp", boundMCP)}, 401, `DPoP error="invalid_dpop_proof"`, "invalid_dpop_proof"},
		{"a proof by another key", "/mcp", "DPoP " + boundMCP,
			map[string]string{"dpop": proof(otherKey, "EdDSA", "POST", "https://mcp.example.com/mcp", boundMCP)}, 401, `DPoP error="invalid_dpop_proof"`, "invalid_dpop_proof"},
		{"a proof for another token", "/mcp", "DPoP " + boundMCP,
			map[string]string{"dpop": proof(clientKey, "ES256", "POST", "https://mcp.example.com/mcp", boundDPoP)}, 401, `DPoP error="invalid_dpop_proof"`, "invalid_dpop_proof"},
		{"no proof", "/mcp", "DPoP " + boundMCP, nil, 401, `DPoP error="invalid_dpop_proof"`, "invalid_dpop_proof"},
		{"two proofs", "/mcp", "DPoP " + boundMCP, map[string]string{"dpop": proof(clientKey, "ES256", "POST", "https://mcp.example.com/mcp", boundMCP) + "," +
			proof(clientKey, "ES256", "POST", "https://mcp.example.com/mcp", boundMCP)}, 401, `DPoP error="invalid_dpop_proof"`, "invalid_dpop_proof"},
		{"the bound token downgraded to Bearer", "/mcp", "Bearer " + boundMCP, nil, 401, `Bearer error="invalid_token"`, "dpop_bound_token_as_bearer"},
		{"an unbound token as DPoP", "/dpop", "DPoP " + plainDPoP,
			map[string]string{"dpop": proof(clientKey, "ES256", "POST", "https://mcp.example.com/dpop", plainDPoP)}, 401, `DPoP algs="ES256 ES384 EdDSA RS256 PS256", Bearer error="invalid_token"`, "token_not_dpop_bound"},
		{"Bearer on a require_dpop route", "/dpop", "Bearer " + plainDPoP, nil, 401, `DPoP algs="ES256 ES384 EdDSA RS256 PS256", Bearer error="invalid_token"`, "dpop_required"},
		{"DPoP on the require_dpop route", "/dpop", "DPoP " + boundDPoP,
			map[string]string{"dpop": proof(clientKey, "ES256", "POST", "https://mcp.example.com/dpop", boundDPoP)}, 0, "", ""},
		{"a certificate-bound token with its certificate", "/mtls", "Bearer " + certBound,
			map[string]string{"x-forwarded-client-cert": xfcc("ba8e59d1b7ce42e186f65286a6321fbbc7fccd71ad8faa496d449eee75319b66")}, 0, "", ""},
		{"a certificate-bound token with another certificate", "/mtls", "Bearer " + certBound,
			map[string]string{"x-forwarded-client-cert": xfcc(strings.Repeat("0", 64))}, 401, `Bearer error="invalid_token"`, "certificate_binding_mismatch"},
		{"a certificate-bound token without a certificate", "/mtls", "Bearer " + certBound, nil, 401, `Bearer error="invalid_token"`, "client_certificate_missing"},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{"authorization": tc.auth}
			peer := ""
			for k, v := range tc.headers {
				if k == "@peer" {
					peer = v
					continue
				}
				h[k] = v
			}
			req := checkRequest("POST", "mcp.example.com", tc.path, h)
			req.Attributes.Request.Http.Scheme = "https"
			if peer != "" {
				req.Attributes.Source = &authv3.AttributeContext_Peer{Certificate: peer}
			}
			resp, err := svc.Check(context.Background(), req)
			require.NoError(t, err)
			if tc.status == 0 {
				require.NotNil(t, resp.GetOkResponse(), "want allow, got %v", resp.GetDeniedResponse())
				return
			}
			d := resp.GetDeniedResponse()
			require.NotNil(t, d, "want a deny")
			assert.Equal(t, tc.status, int(d.GetStatus().GetCode()))
			got := map[string]string{}
			for _, hv := range d.GetHeaders() {
				got[hv.GetHeader().GetKey()] = hv.GetHeader().GetValue()
			}
			assert.True(t, strings.HasPrefix(got["www-authenticate"], tc.challenge), "challenge %q", got["www-authenticate"])
			assert.Contains(t, d.GetBody(), `"error_description":"`+tc.code+`"`)
		})
	}
}

// clientCertificate makes a self-signed client certificate and returns it
// as PEM with its RFC 8705 x5t#S256.
func clientCertificate(t *testing.T) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client"},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	sum := sha256.Sum256(der)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), base64.RawURLEncoding.EncodeToString(sum[:])
}
