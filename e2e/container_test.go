package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tokengate/tokengate/internal/envoycfg"
	"github.com/tokengate/tokengate/internal/stack"
	"github.com/tokengate/tokengate/keys"
)

// The images `make image` and `make envoy-image` build; `make test` builds
// them before it runs this suite.
const (
	tokengateImage = "localhost/tokengate:local"
	mcpSampleImage = "localhost/mcp-sample:local"
	envoyImage     = "localhost/tokengate-envoy:1.40.0"
	// nonrootUID is the image's USER (distroless "nonroot").
	nonrootUID = "65532"
)

// podman runs podman commands with the repository's containers.conf
// (deploy/podman: runc, cgroupfs, no default ulimits).
type podman struct {
	bin, conf string
}

// podmanForTest returns podman once the three images exist. Without podman
// or the images the test is skipped, except under CI=true, where that is a
// failure.
func podmanForTest(t *testing.T) *podman {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: "+format, args...)
		}
		t.Skipf("skipping: "+format, args...)
	}
	bin, err := exec.LookPath("podman")
	if err != nil {
		unavailable("no podman (`make podman` installs it): %v", err)
	}
	conf, err := filepath.Abs(filepath.Join("..", "deploy", "podman", "containers.conf"))
	require.NoError(t, err)
	if c := os.Getenv("CONTAINERS_CONF"); c != "" {
		conf = c
	}
	p := &podman{bin: bin, conf: conf}
	for _, img := range []string{tokengateImage, mcpSampleImage, envoyImage} {
		if _, err := p.run(context.Background(), "image", "exists", img); err != nil {
			unavailable("image %s is missing: run `make image envoy-image`", img)
		}
	}
	return p
}

// run runs podman with args and returns its standard output.
func (p *podman) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, p.bin, args...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

// logs returns a container's output (tokengate logs to stderr).
func (p *podman) logs(name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, "logs", name)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// must runs podman and fails the test on an error.
func (p *podman) must(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := p.run(ctx, args...)
	require.NoError(t, err)
	return out
}

// start runs a detached container named name and removes it when the test
// ends, printing its log if the test failed.
func (p *podman) start(t *testing.T, name string, args ...string) {
	t.Helper()
	p.must(t, append([]string{"run", "-d", "--name", name}, args...)...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if t.Failed() {
			t.Logf("container %s:\n%s", name, p.logs(name))
		}
		_, _ = p.run(ctx, "rm", "-f", "-t", "0", name)
	})
}

// inspect returns a Go-template field of a container.
func (p *podman) inspect(t *testing.T, name, format string) string {
	t.Helper()
	return p.must(t, "inspect", "-f", format, name)
}

// hardened are the run options of every tokengate-side container: read-only
// root filesystem, no capabilities, no privilege gain.
var hardened = []string{"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"}

// containerDir makes a directory a container's nonroot user can read, with
// the given files (mode 0644).
func containerDir(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir, err := os.MkdirTemp(t.TempDir(), "mount")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	for name, b := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	return dir
}

// replaceFile atomically replaces dir/name, as a ConfigMap update does.
func replaceFile(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".new")
	require.NoError(t, os.WriteFile(tmp, b, 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(dir, name)))
}

// uniqueName is a container name prefix no other test run uses.
func uniqueName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return "tokengate-e2e-" + hex.EncodeToString(b)
}

// getStatus GETs u and returns its status code, or 0 if it cannot connect.
func getStatus(u string) int {
	resp, err := http.Get(u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// containerConfig is tokengate's configuration for the container test:
// listeners on the host's loopback, a JWT verifier with the mounted public
// key, an introspection verifier, and the mcp route requiring scope.
func containerConfig(ports stack.Ports, introspectURL, resource, scope string) []byte {
	return []byte(`
server:
  grpc_listen: 127.0.0.1:` + strconv.Itoa(ports.GRPC) + `
  http_listen: 127.0.0.1:` + strconv.Itoa(ports.HTTP) + `
log: {level: info, format: json}
verifiers:
  local:
    type: jwt
    issuer: https://issuer.container.test
    public_key_file: /keys/public.pem
    algorithms: [ES256]
  opaque:
    type: introspection
    introspection_url: ` + introspectURL + `
    client_id: tokengate
    client_secret: s3cret
    timeout: 8s
routes:
  - name: mcp
    match: {path_prefix: /mcp}
    verifiers: [local, opaque]
    required_scopes: [` + scope + `]
    resource: ` + resource + `
`)
}

// TestContainers runs the images as containers: tokengate, mcp-sample and
// Envoy (on the host network, on free loopback ports), and the MCP SDK
// client through them.
func TestContainers(t *testing.T) {
	pm := podmanForTest(t)
	name := uniqueName(t)

	keyDir := filepath.Join(t.TempDir(), "keys")
	_, err := keys.Generate("ES256", "ct", keyDir)
	require.NoError(t, err)
	pub, err := os.ReadFile(filepath.Join(keyDir, keys.PublicKeyFile))
	require.NoError(t, err)
	keysMount := containerDir(t, map[string][]byte{"public.pem": pub})

	t.Run("image: uid 65532, read-only root, HEALTHCHECK healthy", func(t *testing.T) {
		// The image's own HEALTHCHECK probes tokengate's default HTTP port,
		// so this container has a network namespace of its own and the
		// configuration's default listeners.
		cfg := containerDir(t, map[string][]byte{"tokengate.yaml": []byte(`
verifiers:
  local: {type: jwt, issuer: "https://issuer.container.test", public_key_file: /keys/public.pem, algorithms: [ES256]}
routes:
  - {name: mcp, match: {path_prefix: /mcp}, verifiers: [local], resource: "http://127.0.0.1/mcp"}
`)})
		hc := name + "-hc"
		pm.start(t, hc, append(hardened, "-v", cfg+":/etc/tokengate:ro", "-v", keysMount+":/keys:ro", tokengateImage)...)

		assert.Equal(t, `["CMD","/usr/local/bin/tokengate","healthcheck"]`,
			pm.must(t, "image", "inspect", "-f", "{{json .Config.Healthcheck.Test}}", tokengateImage))
		assert.Equal(t, "true", pm.inspect(t, hc, "{{.HostConfig.ReadonlyRootfs}}"))
		pid := pm.inspect(t, hc, "{{.State.Pid}}")
		status, err := os.ReadFile("/proc/" + pid + "/status")
		require.NoError(t, err)
		assert.Contains(t, string(status), "\nUid:\t"+nonrootUID+"\t"+nonrootUID+"\t"+nonrootUID+"\t"+nonrootUID+"\n")
		assert.Contains(t, string(status), "\nGid:\t"+nonrootUID+"\t"+nonrootUID+"\t"+nonrootUID+"\t"+nonrootUID+"\n")

		// Even root cannot write to the image's filesystem.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err = pm.run(ctx, "exec", "--user", "0", hc, "/usr/local/bin/tokengate", "keys", "generate", "--alg", "ES256", "--kid", "x", "--out", "/new")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "read-only file system")

		// podman runs health checks from systemd timers; there is none
		// here, so run the image's check by hand until it passes.
		eventually(t, "the HEALTHCHECK passes", func() bool {
			_, err := pm.run(ctx, "healthcheck", "run", hc)
			return err == nil
		})
		assert.Equal(t, "healthy", pm.inspect(t, hc, "{{.State.Health.Status}}"))
	})

	// The identity provider's introspection endpoint: it answers
	// "opaque-*" tokens, holding each request until released is closed.
	var (
		introspected atomic.Int32
		released     = make(chan struct{})
		releaseOnce  sync.Once
	)
	release := func() { releaseOnce.Do(func() { close(released) }) }
	t.Cleanup(release)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, secret, ok := r.BasicAuth(); !ok || id != "tokengate" || secret != "s3cret" {
			http.Error(w, "bad client", http.StatusUnauthorized)
			return
		}
		introspected.Add(1)
		select {
		case <-released:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"active":true,"sub":"bob","scope":"mcp:read"}`))
	}))
	t.Cleanup(idp.Close)

	ports, err := stack.FreePorts()
	require.NoError(t, err)
	resource := fmt.Sprintf("http://127.0.0.1:%d/mcp", ports.Envoy)
	metadataURL := fmt.Sprintf("http://127.0.0.1:%d/.well-known/oauth-protected-resource/mcp", ports.Envoy)
	cfgDir := containerDir(t, map[string][]byte{"tokengate.yaml": containerConfig(ports, idp.URL, resource, "mcp:read")})
	envoyCfg, err := envoycfg.Render(envoycfg.Params{
		ListenPort: ports.Envoy, AdminPort: ports.EnvoyAdmin, AuthzPort: ports.GRPC, UpstreamPort: ports.Upstream,
	})
	require.NoError(t, err)
	envoyDir := containerDir(t, map[string][]byte{"envoy.yaml": envoyCfg})

	host := []string{"--network", "host", "--no-healthcheck"}
	pm.start(t, name+"-mcp", append(append(host, hardened...),
		"--entrypoint", "/usr/local/bin/mcp-sample", mcpSampleImage, "--listen", fmt.Sprintf("127.0.0.1:%d", ports.Upstream))...)
	tg := name + "-tokengate"
	pm.start(t, tg, append(append(host, hardened...),
		"-v", cfgDir+":/etc/tokengate:ro", "-v", keysMount+":/keys:ro", tokengateImage)...)
	pm.start(t, name+"-envoy", append(host, "--read-only", "-v", envoyDir+":/etc/envoy:ro", envoyImage,
		"envoy", "-c", "/etc/envoy/envoy.yaml", "--disable-hot-restart", "--log-level", "warn")...)

	eventually(t, "mcp-sample is up", func() bool { return getStatus(fmt.Sprintf("http://127.0.0.1:%d/healthz", ports.Upstream)) == 200 })
	eventually(t, "tokengate is ready", func() bool { return getStatus(fmt.Sprintf("http://127.0.0.1:%d/readyz", ports.HTTP)) == 200 })
	eventually(t, "Envoy is ready", func() bool { return getStatus(fmt.Sprintf("http://127.0.0.1:%d/ready", ports.EnvoyAdmin)) == 200 })

	mint := func(scope string) string {
		tok, err := keys.Mint(keys.MintOptions{
			KeyFile: filepath.Join(keyDir, keys.PrivateKeyFile), Alg: "ES256", Kid: "ct",
			Issuer: "https://issuer.container.test", Audience: []string{resource},
			Subject: "alice", Scope: scope, TTL: time.Hour,
		})
		require.NoError(t, err)
		return tok
	}
	envoyURL := fmt.Sprintf("http://127.0.0.1:%d", ports.Envoy)

	t.Run("MCP client through Envoy: allowed with the route scope", func(t *testing.T) {
		s, err := connectURL(t, envoyURL+"/mcp", bearer(mint("mcp:read mcp:write")))
		require.NoError(t, err)
		defer s.Close()
		who := whoami(t, s)
		assert.Equal(t, "alice", who["x-auth-sub"])
		assert.Equal(t, "mcp:read mcp:write", who["x-auth-scopes"])
		assert.Equal(t, "local", who["x-auth-verifier"])
		assert.Equal(t, false, who["authorization_present"], "Authorization must not reach the upstream")
	})

	t.Run("no token: 401 with the resource metadata challenge", func(t *testing.T) {
		resp, _, err := initialize(http.DefaultClient, envoyURL+"/mcp", nil)
		require.NoError(t, err)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Equal(t, `Bearer scope="mcp:read", resource_metadata="`+metadataURL+`"`, resp.Header.Get("WWW-Authenticate"))
		_, err = connectURL(t, envoyURL+"/mcp", nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "Unauthorized")
	})

	t.Run("token without the route scope: 403 insufficient_scope", func(t *testing.T) {
		resp, _, err := initialize(http.DefaultClient, envoyURL+"/mcp", bearer(mint("mcp:write")))
		require.NoError(t, err)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		assert.Equal(t, `Bearer error="insufficient_scope", error_description="scope_insufficient", scope="mcp:read", resource_metadata="`+metadataURL+`"`,
			resp.Header.Get("WWW-Authenticate"))
		_, err = connectURL(t, envoyURL+"/mcp", bearer(mint("mcp:write")))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "Forbidden")
	})

	t.Run("config reload through the mounted file", func(t *testing.T) {
		writeOnly := mint("mcp:write")
		replaceFile(t, cfgDir, "tokengate.yaml", containerConfig(ports, idp.URL, resource, "mcp:write"))
		eventually(t, "the reloaded route scope lets mcp:write in", func() bool {
			resp, _, err := initialize(http.DefaultClient, envoyURL+"/mcp", bearer(writeOnly))
			return err == nil && resp.StatusCode == http.StatusOK
		})
		resp, _, err := initialize(http.DefaultClient, envoyURL+"/mcp", bearer(mint("mcp:read")))
		require.NoError(t, err)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, "mcp:read alone no longer suffices")
		// Back to the original, for the tests below.
		replaceFile(t, cfgDir, "tokengate.yaml", containerConfig(ports, idp.URL, resource, "mcp:read"))
		eventually(t, "the original configuration is back", func() bool {
			resp, _, err := initialize(http.DefaultClient, envoyURL+"/mcp", bearer(writeOnly))
			return err == nil && resp.StatusCode == http.StatusForbidden
		})
	})

	t.Run("SIGTERM: in-flight Checks are answered, then tokengate exits 0", func(t *testing.T) {
		// Checks straight to tokengate's gRPC port, as Envoy sends them,
		// each held in tokengate by the introspection endpoint.
		conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", ports.GRPC), grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer conn.Close()
		client := authv3.NewAuthorizationClient(conn)
		const inFlight = 8
		type answer struct {
			code codes.Code
			err  error
		}
		answers := make(chan answer, inFlight)
		for i := range inFlight {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				resp, err := client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
					Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
						Method: "POST", Path: "/mcp", Host: fmt.Sprintf("127.0.0.1:%d", ports.Envoy), Scheme: "http",
						Headers: map[string]string{"authorization": fmt.Sprintf("Bearer opaque-%d", i)},
					}},
				}})
				if err != nil {
					answers <- answer{err: err}
					return
				}
				answers <- answer{code: codes.Code(resp.GetStatus().GetCode())}
			}()
		}
		eventually(t, "every Check waits on the introspection endpoint", func() bool { return introspected.Load() == inFlight })

		pm.must(t, "kill", "--signal", "TERM", tg)
		// Shutting down: the HTTP port closes, the held Checks stay.
		eventually(t, "tokengate stops accepting HTTP", func() bool {
			return getStatus(fmt.Sprintf("http://127.0.0.1:%d/readyz", ports.HTTP)) == 0
		})
		assert.Equal(t, "running", pm.inspect(t, tg, "{{.State.Status}}"), "tokengate waits for its in-flight Checks")
		release()
		for range inFlight {
			a := <-answers
			require.NoError(t, a.err)
			assert.Equal(t, codes.OK, a.code, "an in-flight Check is answered: allowed")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := pm.run(ctx, "wait", tg)
		require.NoError(t, err)
		assert.Equal(t, "0", out, "tokengate exits 0 within its grace period, not killed")
		var logs []map[string]any
		for _, line := range strings.Split(pm.logs(tg), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil {
				logs = append(logs, m)
			}
		}
		require.NotEmpty(t, logs)
		assert.Equal(t, "tokengate stopped", logs[len(logs)-1]["msg"])
	})
}
