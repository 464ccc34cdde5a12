package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/internal/envoycfg"
	"github.com/tokengate/tokengate/keys"
)

// testPKI is a CA, a server certificate for 127.0.0.1 and two client
// certificates, written as PEM files.
type testPKI struct {
	dir                       string
	ca                        *x509.Certificate
	caKey                     *ecdsa.PrivateKey
	caFile, certFile, keyFile string
	clients                   [2]tls.Certificate
	x5t                       [2]string // RFC 8705 thumbprints of the clients
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	var err error
	p.caKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	require.NoError(t, err)
	p.ca, err = x509.ParseCertificate(der)
	require.NoError(t, err)
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	serverDER, serverKey := p.issue(t, 2, "127.0.0.1", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.certFile = p.write(t, "server.pem", "CERTIFICATE", serverDER)
	kb, err := x509.MarshalECPrivateKey(serverKey)
	require.NoError(t, err)
	p.keyFile = p.write(t, "server-key.pem", "EC PRIVATE KEY", kb)
	for i := range p.clients {
		cd, ck := p.issue(t, int64(10+i), fmt.Sprintf("client-%d", i), x509.ExtKeyUsageClientAuth, nil)
		p.clients[i] = tls.Certificate{Certificate: [][]byte{cd}, PrivateKey: ck}
		sum := sha256.Sum256(cd)
		p.x5t[i] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return p
}

func (p *testPKI) issue(t *testing.T, serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, IPAddresses: ips,
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	require.NoError(t, err)
	return der, key
}

func (p *testPKI) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	return path
}

// client is an HTTPS client presenting client certificate i.
func (p *testPKI) client(i int) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{p.clients[i]}, MinVersion: tls.VersionTLS12,
	}}}
}

// TestCertificateBoundTokensThroughEnvoy (RFC 8705, contract section 11):
// Envoy requires a client certificate and sends it to tokengate; a token
// bound to certificate 0 passes with it and is refused with certificate 1.
func TestCertificateBoundTokensThroughEnvoy(t *testing.T) {
	pki := newTestPKI(t)
	e := startEnv(t, envOptions{envoyTLS: &envoycfg.TLS{CertFile: pki.certFile, KeyFile: pki.keyFile, ClientCAFile: pki.caFile}})
	token := e.mint(t, "es", "ES256", func(o *keys.MintOptions) { o.CnfX5T = pki.x5t[0] })
	url := strings.Replace(e.stack.EnvoyURL(), "http://", "https://", 1) + "/mcp"

	resp, _, err := initialize(pki.client(0), url, bearer(token))
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the certificate the token is bound to")

	resp, _, err = initialize(pki.client(1), url, bearer(token))
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "another certificate")
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error_description="certificate_binding_mismatch"`)
}

// TestCertificateBoundTokensThroughXFCC: a front Envoy terminates mTLS and
// sets x-forwarded-client-cert (replacing any the client sent); the Envoy
// beside tokengate keeps it, and the route trusts it
// (trust_forwarded_client_cert), as behind Istio.
func TestCertificateBoundTokensThroughXFCC(t *testing.T) {
	pki := newTestPKI(t)
	e := startEnv(t, envOptions{
		envoyForwardClientCert: true,
		mcpRoute:               "    trust_forwarded_client_cert: true\n",
	})
	front := startFrontEnvoy(t, pki, e.stack.EnvoyURL())
	token := e.mint(t, "es", "ES256", func(o *keys.MintOptions) { o.CnfX5T = pki.x5t[0] })

	resp, _, err := initialize(pki.client(0), front+"/mcp", bearer(token))
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the certificate the token is bound to")

	h := bearer(token)
	// A client naming another certificate itself: the front Envoy replaces it.
	h["X-Forwarded-Client-Cert"] = "Hash=" + strings.Repeat("ab", 32)
	resp, _, err = initialize(pki.client(1), front+"/mcp", h)
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "another certificate")
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error_description="certificate_binding_mismatch"`)
}

// startFrontEnvoy runs an Envoy that terminates mTLS and forwards to
// upstreamURL with x-forwarded-client-cert set; it returns its https URL.
func startFrontEnvoy(t *testing.T, pki *testPKI, upstreamURL string) string {
	t.Helper()
	port, admin := freeTCPPort(t), freeTCPPort(t)
	upPort := strings.TrimPrefix(upstreamURL, "http://127.0.0.1:")
	cfg := fmt.Sprintf(`
admin: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
static_resources:
  listeners:
  - name: front
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          common_tls_context:
            tls_certificates: [{certificate_chain: {filename: %q}, private_key: {filename: %q}}]
            validation_context: {trusted_ca: {filename: %q}}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: front
          forward_client_cert_details: SANITIZE_SET
          set_current_client_cert_details: {cert: true}
          route_config:
            virtual_hosts:
            - {name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: inner, timeout: 0s}}]}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: inner
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: inner
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %s}}}}]}]
`, admin, port, pki.certFile, pki.keyFile, pki.caFile, upPort)
	path := filepath.Join(t.TempDir(), "front.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	cmd := exec.Command(bins.envoy, "-c", path, "--disable-hot-restart", "--log-level", "warn", "--base-id", fmt.Sprint(port))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", admin))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return fmt.Sprintf("https://127.0.0.1:%d", port)
			}
		}
		require.True(t, time.Now().Before(deadline), "the front Envoy never became ready")
		time.Sleep(50 * time.Millisecond)
	}
}
