package e2e

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/internal/stack"
	"github.com/tokengate/tokengate/keys"
)

// TestForwardAuth runs the forward-auth (HTTP) mode behind two real
// gateways: Envoy whose ext_authz filter uses http_service, and nginx with
// auth_request, each in front of mcp-sample, with the configuration that
// docs/forward-auth.md shows.
func TestForwardAuth(t *testing.T) {
	gateways := []struct {
		name  string
		start func(t *testing.T) *env
		// stripsAnyIdentity: the gateway removes every client-sent x-auth-*
		// header, not only those tokengate sets (nginx cannot by prefix).
		stripsAnyIdentity bool
	}{
		{"envoy http_service", func(t *testing.T) *env {
			return startForwardEnv(t, stack.Options{EnvoyForwardAuth: true})
		}, true},
		{"nginx auth_request", func(t *testing.T) *env {
			nginx := nginxBinary(t)
			e := startForwardEnv(t, stack.Options{NoEnvoy: true})
			startNginx(t, nginx, e)
			return e
		}, false},
	}
	for _, gw := range gateways {
		t.Run(gw.name, func(t *testing.T) {
			e := gw.start(t)
			metadataURL := strings.Replace(e.resource, "/mcp", "/.well-known/oauth-protected-resource/mcp", 1)

			t.Run("a valid token reaches mcp-sample with the identity headers", func(t *testing.T) {
				tok := e.mint(t, "rs", "RS256", nil)
				who := e.whoamiAt(t, "/mcp", map[string]string{
					"Authorization":    "Bearer " + tok,
					"X-Auth-Sub":       "mallory",
					"X-Auth-Client-Id": "evil-client",
					"X-Auth-Role":      "admin",
				})
				assert.Equal(t, "alice", who["x-auth-sub"])
				assert.Equal(t, e.issuer, who["x-auth-iss"])
				assert.Equal(t, "mcp:read mcp:write", who["x-auth-scopes"])
				assert.Equal(t, "idp", who["x-auth-verifier"])
				assert.NotContains(t, who, "x-auth-client-id", "the token has no client_id: the client's must not pass")
				assert.Equal(t, false, who["authorization_present"], "Authorization must not reach the upstream")
				if gw.stripsAnyIdentity {
					assert.NotContains(t, who, "x-auth-role")
				}
			})

			t.Run("a bad token is 401 invalid_token with the challenge and JSON body", func(t *testing.T) {
				tok := e.mint(t, "rs", "RS256", func(o *keys.MintOptions) { o.Now = time.Now().Add(-3 * time.Hour) })
				resp, body := e.post(t, "/mcp", bearer(tok))
				assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
				assert.Equal(t, `Bearer error="invalid_token", error_description="token_expired", scope="mcp:read", resource_metadata="`+metadataURL+`"`,
					resp.Header.Get("WWW-Authenticate"))
				assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
				assert.JSONEq(t, `{"error":"invalid_token","error_description":"token_expired"}`, body)
				assert.NotContains(t, body, tok)
			})

			t.Run("no token is 401 with the resource metadata challenge", func(t *testing.T) {
				resp, body := e.post(t, "/mcp", nil)
				assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
				assert.Equal(t, `Bearer scope="mcp:read", resource_metadata="`+metadataURL+`"`, resp.Header.Get("WWW-Authenticate"))
				assert.JSONEq(t, `{"error":"invalid_request","error_description":"missing bearer token"}`, body)

				_, err := e.connect(t, nil)
				require.Error(t, err)
				assert.Contains(t, err.Error(), "Unauthorized")
			})

			t.Run("a token without the scope is 403 insufficient_scope", func(t *testing.T) {
				tok := e.mint(t, "rs", "RS256", func(o *keys.MintOptions) { o.Scope = "mcp:write" })
				resp, body := e.post(t, "/mcp", bearer(tok))
				assert.Equal(t, http.StatusForbidden, resp.StatusCode)
				assert.Equal(t, `Bearer error="insufficient_scope", error_description="scope_insufficient", scope="mcp:read", resource_metadata="`+metadataURL+`"`,
					resp.Header.Get("WWW-Authenticate"))
				assert.JSONEq(t, `{"error":"insufficient_scope","error_description":"scope_insufficient"}`, body)
			})

			t.Run("the metadata document is served through the gateway", func(t *testing.T) {
				resp, body := get(t, metadataURL)
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
				assert.JSONEq(t, `{"resource":"`+e.resource+`","authorization_servers":["`+e.issuer+`"],"scopes_supported":["mcp:read"],"bearer_methods_supported":["header"],"dpop_signing_alg_values_supported":["ES256","ES384","EdDSA","RS256","PS256"]}`, body)
			})
		})
	}
}

// startForwardEnv is startEnv's base configuration (verifier "idp" with an
// RS256 key, route mcp) on a stack started with o: o's binaries, config,
// directory and ports are filled in. The resource is on ports.Envoy, where
// Envoy or the test's own gateway listens.
func startForwardEnv(t *testing.T, o stack.Options) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), keyDirs: map[string]string{}}
	e.newKey(t, "rs", "RS256")
	e.serveJWKS(t, "rs")
	e.idp = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*e.jwks.Load())
	}))
	t.Cleanup(e.idp.Close)
	e.issuer = e.idp.URL

	ports, err := stack.FreePorts()
	require.NoError(t, err)
	e.resource = "http://127.0.0.1:" + strconv.Itoa(ports.Envoy) + "/mcp"
	e.cfgPath = filepath.Join(e.dir, "tokengate.yaml")
	require.NoError(t, os.WriteFile(e.cfgPath, []byte(e.config(envOptions{})), 0o644))
	o.Tokengate, o.MCPSample, o.Envoy = bins.tokengate, bins.mcpSample, bins.envoy
	o.Config, o.Dir, o.Ports = e.cfgPath, e.dir, ports
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := stack.Start(ctx, o)
	require.NoError(t, err)
	e.stack = s
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.Logs(40))
		}
		s.Stop()
	})
	return e
}

// nginxBinary finds nginx: $NGINX_BIN, then PATH, then /usr/sbin/nginx.
// Missing, it fails the test under CI=true and skips it elsewhere.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NGINX_BIN"); p != "" {
		return p
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	const msg = "nginx not found: run `make nginx` (installs the Debian package nginx) or set NGINX_BIN"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: a missing nginx is a failure)")
	}
	t.Skip(msg)
	return ""
}

// nginxConf is the configuration docs/forward-auth.md shows, with the
// test's ports and directory filled in.
const nginxConf = `worker_processes 1;
events { worker_connections 256; }

http {
    access_log {{DIR}}/access.log;
    client_body_temp_path {{DIR}}/client_body;
    proxy_temp_path {{DIR}}/proxy;
    fastcgi_temp_path {{DIR}}/fastcgi;
    uwsgi_temp_path {{DIR}}/uwsgi;
    scgi_temp_path {{DIR}}/scgi;

    upstream tokengate { server {{TOKENGATE}}; }
    upstream mcp { server {{UPSTREAM}}; }

    server {
        listen {{LISTEN}};

        # RFC 9728 metadata: served by tokengate itself, no check.
        location /.well-known/oauth-protected-resource {
            proxy_pass http://tokengate;
        }

        location / {
            auth_request /_tokengate;

            # Identity headers from tokengate's answer. Each one is set,
            # empty or not: an empty value drops the header, so a client
            # can never send its own.
            auth_request_set $auth_sub       $upstream_http_x_auth_sub;
            auth_request_set $auth_iss       $upstream_http_x_auth_iss;
            auth_request_set $auth_scopes    $upstream_http_x_auth_scopes;
            auth_request_set $auth_client_id $upstream_http_x_auth_client_id;
            auth_request_set $auth_verifier  $upstream_http_x_auth_verifier;
            proxy_set_header X-Auth-Sub       $auth_sub;
            proxy_set_header X-Auth-Iss       $auth_iss;
            proxy_set_header X-Auth-Scopes    $auth_scopes;
            proxy_set_header X-Auth-Client-Id $auth_client_id;
            proxy_set_header X-Auth-Verifier  $auth_verifier;
            # forward_authorization: false
            proxy_set_header Authorization    "";
            proxy_set_header Host             $http_host;

            # MCP streamable HTTP: server-sent events stay open.
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 1h;
            proxy_pass http://mcp;

            # A deny: ask tokengate again and relay its whole answer (status,
            # WWW-Authenticate, JSON body). 500 is how auth_request reports
            # any other status (400, 503) or an unreachable tokengate.
            error_page 401 403 500 = @tokengate_deny;
        }

        location = /_tokengate {
            internal;
            proxy_pass http://tokengate/authz;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Uri "";
            proxy_set_header X-Forwarded-Method "";
        }

        location @tokengate_deny {
            rewrite ^ /authz? break;
            proxy_pass http://tokengate;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Uri "";
            proxy_set_header X-Forwarded-Method "";
        }
    }
}
`

// startNginx runs nginx on ports.Envoy in front of e's mcp-sample, asking
// e's tokengate, until the test ends. It waits until the metadata document
// answers through it.
func startNginx(t *testing.T, bin string, e *env) {
	t.Helper()
	// Not t.TempDir: nginx's workers run as an unprivileged user under
	// root and must reach the temp paths.
	dir, err := os.MkdirTemp("", "tokengate-nginx-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	base := e.stack.EnvoyURL()
	conf := strings.NewReplacer(
		"{{DIR}}", dir,
		"{{LISTEN}}", strings.TrimPrefix(base, "http://"),
		"{{TOKENGATE}}", strings.TrimPrefix(e.stack.TokengateHTTP(), "http://"),
		"{{UPSTREAM}}", strings.TrimPrefix(e.stack.UpstreamURL(), "http://"),
	).Replace(nginxConf)
	confPath := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o644))

	logPath := filepath.Join(e.dir, "nginx.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, "-e", "stderr", "-p", dir, "-c", confPath,
		"-g", "daemon off; pid "+filepath.Join(dir, "nginx.pid")+"; error_log stderr;")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("--- nginx (%s)\n%s", logPath, b)
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})

	ready := base + "/.well-known/oauth-protected-resource/mcp"
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			require.FailNow(t, "nginx exited before it was ready", "%s", b)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			require.NoError(t, errors.Join(errors.New("nginx not ready in time"), err))
		}
	}
}
