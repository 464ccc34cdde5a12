package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/keys"
	"github.com/tokengate/tokengate/server/extauthz"
)

func reloadConfig(keyFile, scope string) string {
	return `
server: {grpc_listen: "127.0.0.1:0", http_listen: "127.0.0.1:0"}
verifiers:
  k: {type: jwt, issuer: https://issuer.test, public_key_file: ` + keyFile + `}
routes:
  - {name: mcp, match: {path_prefix: /mcp}, verifiers: [k], required_scopes: [` + scope + `], resource: https://mcp.example.com/mcp}
`
}

func checkReq(token string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "POST", Path: "/mcp", Host: "mcp.example.com",
			Headers: map[string]string{"authorization": "Bearer " + token},
		}},
	}}
}

// status returns 0 for allow, else the deny status.
func status(t *testing.T, s *Server, token string) int {
	t.Helper()
	resp, err := extauthz.NewService(s.svc).Check(context.Background(), checkReq(token))
	require.NoError(t, err)
	if resp.GetOkResponse() != nil {
		return 0
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode())
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	_, err := keys.Generate("ES256", "k", dir)
	require.NoError(t, err)
	keyFile := filepath.Join(dir, keys.PublicKeyFile)
	path := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte(reloadConfig(keyFile, "read")), 0o600))
	cfg, err := config.Load(path, nil)
	require.NoError(t, err)
	srv, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{
		Load:      func() (*config.Config, error) { return config.Load(path, nil) },
		WatchFile: path,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	eventually(t, func() bool { srv.reloadMu.Lock(); defer srv.reloadMu.Unlock(); return srv.runCtx != nil })

	token, err := keys.Mint(keys.MintOptions{
		KeyFile: filepath.Join(dir, keys.PrivateKeyFile), Alg: "ES256", Kid: "k",
		Issuer: "https://issuer.test", Audience: []string{"https://mcp.example.com/mcp"}, Subject: "alice", Scope: "read",
	})
	require.NoError(t, err)
	require.Equal(t, 0, status(t, srv, token))

	// Concurrent Checks run through every swap below (meaningful under -race).
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				resp, err := extauthz.NewService(srv.svc).Check(context.Background(), checkReq(token))
				if err != nil || resp == nil {
					t.Error("Check failed during reload")
					return
				}
			}
		})
	}

	t.Run("good file swaps in", func(t *testing.T) {
		require.NoError(t, os.WriteFile(path, []byte(reloadConfig(keyFile, "write")), 0o600))
		require.NoError(t, srv.Reload())
		assert.Equal(t, 403, status(t, srv, token), "the new policy requires scope write")
		assert.GreaterOrEqual(t, testutil.ToFloat64(srv.metrics.reloads.WithLabelValues("success")), 1.0)
	})
	t.Run("bad file keeps the last good policy", func(t *testing.T) {
		require.NoError(t, os.WriteFile(path, []byte("routes: [{name: x}]\nbogus: 1\n"), 0o600))
		err := srv.Reload()
		var cerr *config.Error
		require.ErrorAs(t, err, &cerr)
		assert.Equal(t, 403, status(t, srv, token), "still the previous policy")
		assert.GreaterOrEqual(t, testutil.ToFloat64(srv.metrics.reloads.WithLabelValues("failure")), 1.0, "the watcher may count the same bad file again")
	})
	t.Run("a key file that fails to parse keeps the last good policy", func(t *testing.T) {
		require.NoError(t, os.WriteFile(path, []byte(reloadConfig(path, "read")), 0o600))
		err := srv.Reload()
		var cerr *config.Error
		require.ErrorAs(t, err, &cerr)
		assert.Contains(t, cerr.Error(), "verifiers.k.public_key_file")
		assert.Equal(t, 403, status(t, srv, token))
	})
	t.Run("a changed file is reloaded without a signal", func(t *testing.T) {
		require.NoError(t, os.WriteFile(path, []byte(reloadConfig(keyFile, "read")), 0o600))
		eventually(t, func() bool { return status(t, srv, token) == 0 })
	})
	stop.Store(true)
	wg.Wait()
}
