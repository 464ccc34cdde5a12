package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/keys"
)

// startServer runs a Server on loopback ports with a JWKS verifier whose
// endpoint answers only once jwksUp is true.
func startServer(t *testing.T, jwksUp *atomic.Bool) (*Server, string) {
	t.Helper()
	dir := t.TempDir()
	_, err := keys.Generate("ES256", "k1", dir)
	require.NoError(t, err)
	jwks, err := os.ReadFile(filepath.Join(dir, keys.JWKSFile))
	require.NoError(t, err)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !jwksUp.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(jwks)
	}))
	t.Cleanup(idp.Close)
	yaml := `
server: {grpc_listen: "127.0.0.1:0", http_listen: "127.0.0.1:0"}
verifiers:
  idp: {type: jwt, issuer: "` + idp.URL + `", jwks_uri: "` + idp.URL + `/jwks", jwks_refresh: 1h}
routes:
  - name: mcp
    match: {path_prefix: /mcp}
    verifiers: [idp]
    required_scopes: [mcp:read]
    resource: https://mcp.example.com/mcp
`
	path := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	cfg, err := config.Load(path, nil)
	require.NoError(t, err)
	srv, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	token, err := keys.Mint(keys.MintOptions{
		KeyFile: filepath.Join(dir, keys.PrivateKeyFile), Alg: "ES256", Kid: "k1",
		Issuer: idp.URL, Audience: []string{"https://mcp.example.com/mcp"}, Subject: "alice", Scope: "mcp:read",
	})
	require.NoError(t, err)
	return srv, token
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// eventually polls cond for up to 10s; it fails on conditions, not timing.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("condition never became true")
}

func TestServerHTTPAndGRPC(t *testing.T) {
	var up atomic.Bool
	srv, token := startServer(t, &up)
	base := "http://" + srv.HTTPAddr()

	status, body := get(t, base+"/healthz")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "ok\n", body)

	status, body = get(t, base+"/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, status, "JWKS not fetched yet")
	assert.JSONEq(t, `{"ready":false,"not_ready":["idp"]}`, body)

	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	eventually(t, func() bool {
		r, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err == nil && r.Status == healthpb.HealthCheckResponse_NOT_SERVING
	})

	up.Store(true)
	eventually(t, func() bool { s, _ := get(t, base+"/readyz"); return s == http.StatusOK })
	eventually(t, func() bool {
		r, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err == nil && r.Status == healthpb.HealthCheckResponse_SERVING
	})

	status, body = get(t, base+"/.well-known/oauth-protected-resource/mcp")
	assert.Equal(t, http.StatusOK, status)
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	assert.Equal(t, "https://mcp.example.com/mcp", doc["resource"])
	status, _ = get(t, base+"/.well-known/oauth-protected-resource/other")
	assert.Equal(t, http.StatusNotFound, status)

	client := authv3.NewAuthorizationClient(conn)
	for range 2 { // the second Check is answered by the token cache
		resp, err := client.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "POST", Path: "/mcp", Host: "mcp.example.com",
				Headers: map[string]string{"authorization": "Bearer " + token},
			}},
		}})
		require.NoError(t, err)
		require.NotNil(t, resp.GetOkResponse(), "valid token must be allowed")
	}

	status, body = get(t, base+"/metrics")
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, `tokengate_check_total{decision="allow",reason="ok",route="mcp",verifier="idp"} 2`)
	assert.Contains(t, body, `tokengate_cache_total{cache="token",result="miss"} 1`)
	assert.Contains(t, body, `tokengate_cache_total{cache="token",result="hit"} 1`)
	assert.Contains(t, body, `tokengate_jwks_refresh_total{result="success",verifier="idp"}`)
	assert.Contains(t, body, `tokengate_jwks_keys{verifier="idp"} 1`)
	assert.NotContains(t, body, token)
	assert.False(t, strings.Contains(body, "alice"), "metrics must not carry subjects")
}

func TestServerListenError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	cfg := &config.Config{Server: config.Server{GRPCListen: l.Addr().String(), HTTPListen: "127.0.0.1:0"}}
	_, err = New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "server.grpc_listen")
}
