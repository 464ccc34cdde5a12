package repocheck

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io/fs"
	"math/big"
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

// Every Envoy configuration shipped in the repository passes Envoy's own
// validation.

// envoyForTest returns the Envoy binary. Without one the test is skipped,
// except under CI=true, where a missing Envoy is a failure.
func envoyForTest(t *testing.T) string {
	t.Helper()
	bin, err := envoycfg.Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no Envoy: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	return bin
}

// envoyValidate runs `envoy --mode validate -c path` and returns its
// combined output and error.
func envoyValidate(t *testing.T, bin, path string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--mode", "validate", "-c", path,
		"--disable-hot-restart", "--log-level", "warn").CombinedOutput()
	return string(out), err
}

// ports are sample ports for envoycfg.Render.
var ports = envoycfg.Params{ListenPort: 10000, AdminPort: 10001, AuthzPort: 9191, UpstreamPort: 8000}

// benchParams are the template fields internal/bench sets, with a real JWKS.
func benchParams(t *testing.T) envoycfg.Params {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	_, err := keys.Generate("RS256", "bench", dir)
	require.NoError(t, err)
	jwks, err := os.ReadFile(filepath.Join(dir, keys.JWKSFile))
	require.NoError(t, err)
	return envoycfg.Params{
		ListenPort: 20003, AdminPort: 19901, AuthzPort: 19191, DirectResponse: true,
		Listeners: []envoycfg.Listener{
			{Name: "none", Port: 20001},
			{Name: "jwt_authn", Port: 20002, JWTAuthn: &envoycfg.JWTAuthn{
				Issuer: "https://bench.issuer", Audience: "https://bench.example/mcp", JWKS: strings.TrimSpace(string(jwks)),
			}},
			{Name: "ext_authz_noop", Port: 20004, ExtAuthzPort: 19192},
		},
	}
}

// shippedEnvoyConfigs are the repository's Envoy configurations, each with
// a way to produce a concrete file from it.
var shippedEnvoyConfigs = []struct {
	name   string
	source string // path from the repository root
	render func(t *testing.T) []byte
}{
	{"template, catch-all only", "internal/envoycfg/envoy.yaml.tmpl", func(t *testing.T) []byte {
		b, err := envoycfg.Render(ports)
		require.NoError(t, err)
		return b
	}},
	{"template, on every interface", "internal/envoycfg/envoy.yaml.tmpl", func(t *testing.T) []byte {
		p := ports
		p.Address = "0.0.0.0"
		b, err := envoycfg.Render(p)
		require.NoError(t, err)
		return b
	}},
	{"template, pinned and rewritten routes", "internal/envoycfg/envoy.yaml.tmpl", func(t *testing.T) []byte {
		p := ports
		p.Routes = []envoycfg.Route{
			{Prefix: "/mcp/admin", PrefixRewrite: "/mcp", TokengateRoute: "admin"},
			{Prefix: "/public", PrefixRewrite: "/mcp"},
			{Prefix: "/pinned", TokengateRoute: `odd "name": yes`},
		}
		b, err := envoycfg.Render(p)
		require.NoError(t, err)
		return b
	}},
	{"template, request body for MCP operation rules", "internal/envoycfg/envoy.yaml.tmpl", func(t *testing.T) []byte {
		p := ports
		p.WithRequestBody = true
		b, err := envoycfg.Render(p)
		require.NoError(t, err)
		return b
	}},
	{"template, forward-auth (HTTP) mode", "internal/envoycfg/envoy.yaml.tmpl", func(t *testing.T) []byte {
		p := ports
		p.AuthzHTTPPort = 9192
		p.Routes = []envoycfg.Route{{Prefix: "/public", PrefixRewrite: "/mcp"}}
		b, err := envoycfg.Render(p)
		require.NoError(t, err)
		return b
	}},
	{"compose", "deploy/compose/envoy.yaml", func(t *testing.T) []byte {
		b, err := os.ReadFile(filepath.Join(composeDir, "envoy.yaml"))
		require.NoError(t, err)
		return b
	}},
	{"template, client certificates for bound tokens", "internal/envoycfg/envoy.yaml.tmpl", func(t *testing.T) []byte {
		dir := t.TempDir()
		writeTestTLS(t, dir)
		p := ports
		p.DownstreamTLS = &envoycfg.TLS{CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem"),
			ClientCAFile: filepath.Join(dir, "client-ca.pem")}
		b, err := envoycfg.Render(p)
		require.NoError(t, err)
		return b
	}},
	{"template, behind a proxy that sets x-forwarded-client-cert", "internal/envoycfg/envoy.yaml.tmpl", func(t *testing.T) []byte {
		p := ports
		p.ForwardClientCert = true
		b, err := envoycfg.Render(p)
		require.NoError(t, err)
		return b
	}},
	{"mTLS example", "deploy/mtls/envoy.yaml", func(t *testing.T) []byte {
		b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "mtls", "envoy.yaml"))
		require.NoError(t, err)
		// Envoy reads the certificate files while validating: real ones.
		dir := t.TempDir()
		writeTestTLS(t, dir)
		return []byte(strings.ReplaceAll(string(b), "/etc/envoy/tls", dir))
	}},
	{"template, the benchmark's listeners", "internal/envoycfg/envoy.yaml.tmpl", func(t *testing.T) []byte {
		b, err := envoycfg.Render(benchParams(t))
		require.NoError(t, err)
		return b
	}},
}

func TestShippedEnvoyConfigsValidate(t *testing.T) {
	bin := envoyForTest(t)
	for _, tc := range shippedEnvoyConfigs {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "envoy.yaml")
			require.NoError(t, os.WriteFile(path, tc.render(t), 0o600))
			out, err := envoyValidate(t, bin, path)
			require.NoError(t, err, "envoy --mode validate %s:\n%s", tc.source, out)
			assert.Contains(t, out, "OK")
		})
	}
}

// TestEnvoyValidateRejectsMistakes shows the validation above has teeth: a
// misspelled field or an impossible value in a shipped configuration makes
// `envoy --mode validate` fail, naming the problem.
func TestEnvoyValidateRejectsMistakes(t *testing.T) {
	bin := envoyForTest(t)
	good, err := os.ReadFile(filepath.Join(composeDir, "envoy.yaml"))
	require.NoError(t, err)
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown field", "failure_mode_allow: false", "failure_mode_alow: false", "failure_mode_alow"},
		{"port out of range", "port_value: 9191", "port_value: 99999", "value must be less than or equal to 65535"},
		{"unknown cluster type", "type: STRICT_DNS", "type: STRICT_DNZ", "STRICT_DNZ"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Contains(t, string(good), tc.old)
			path := filepath.Join(t.TempDir(), "envoy.yaml")
			require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(good), tc.old, tc.new, 1)), 0o600))
			out, err := envoyValidate(t, bin, path)
			var exitErr *exec.ExitError
			require.ErrorAs(t, err, &exitErr, out)
			assert.NotZero(t, exitErr.ExitCode())
			assert.Contains(t, out, tc.want)
		})
	}
}

// TestEveryEnvoyConfigIsValidated finds every Envoy bootstrap in the
// repository's own files and checks the table above covers it, so a new
// one cannot ship unvalidated.
func TestEveryEnvoyConfigIsValidated(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range shippedEnvoyConfigs {
		covered[c.source] = true
	}
	var found []string
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			// Hidden directories (.git, .venv, .demo) and build output are not shipped.
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || rel == "bin" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml", ".tmpl", ".json":
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("static_resources:")) {
			found = append(found, rel)
		}
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, found)
	for _, f := range found {
		assert.True(t, covered[f], "%s is an Envoy configuration: add it to shippedEnvoyConfigs", f)
	}
	for src := range covered {
		assert.Contains(t, found, src, "shippedEnvoyConfigs names %s, which is not an Envoy configuration", src)
	}
}

// writeTestTLS writes a self-signed CA (client-ca.pem) and a server
// certificate and key it signed (server.pem, server-key.pem) into dir.
func writeTestTLS(t *testing.T, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test client CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	require.NoError(t, err)
	for name, block := range map[string]*pem.Block{
		"client-ca.pem": {Type: "CERTIFICATE", Bytes: caDER}, "server.pem": {Type: "CERTIFICATE", Bytes: srvDER},
		"server-key.pem": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600))
	}
}
