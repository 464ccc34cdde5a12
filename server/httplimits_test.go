package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/config"
)

// startLimited runs a Server whose HTTP port has the limits l (a static
// verifier: nothing to fetch) and returns the HTTP port's address.
func startLimited(t *testing.T, l HTTPLimits) string {
	t.Helper()
	dir := t.TempDir()
	yaml := `
server: {grpc_listen: "127.0.0.1:0", http_listen: "127.0.0.1:0"}
verifiers:
  dev: {type: static, tokens: {dev-alice: {sub: alice, scopes: [mcp:read]}}}
routes:
  - name: mcp
    match: {path_prefix: /mcp}
    verifiers: [dev]
    required_scopes: [mcp:read]
`
	path := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	cfg, err := config.Load(path, nil)
	require.NoError(t, err)
	srv, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{HTTP: l})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return srv.HTTPAddr()
}

// safetyBound only keeps a broken server from hanging the test: no
// assertion depends on how long anything takes.
const safetyBound = 30 * time.Second

func dialHTTP(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(safetyBound)))
	return c, bufio.NewReader(c)
}

// requireClosed reads until the server closes the connection; hitting the
// safety bound instead fails the test.
func requireClosed(t *testing.T, r *bufio.Reader) {
	t.Helper()
	rest, err := io.ReadAll(r)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server did not close the connection")
	require.Empty(t, string(rest), "nothing more after the answer")
}

// readStatus reads one response and reports its status and whether the
// server announced that it closes the connection.
func readStatus(t *testing.T, r *bufio.Reader) (status int, closing bool) {
	t.Helper()
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode, resp.Close
}

// TestHTTPLimits: issue 10 finding 6. Idle keep-alive connections, slow
// headers and declared-but-missing bodies no longer hold the HTTP port.
func TestHTTPLimits(t *testing.T) {
	t.Parallel()
	addr := startLimited(t, HTTPLimits{
		ReadHeaderTimeout: 200 * time.Millisecond,
		ReadTimeout:       300 * time.Millisecond,
		IdleTimeout:       200 * time.Millisecond,
		MaxBodyBytes:      1024,
	})

	t.Run("idle keep-alive connection is closed", func(t *testing.T) {
		t.Parallel()
		c, r := dialHTTP(t, addr)
		_, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: tokengate\r\n\r\n")
		require.NoError(t, err)
		status, closing := readStatus(t, r)
		require.Equal(t, http.StatusOK, status)
		require.False(t, closing, "kept alive after the answer")
		requireClosed(t, r)
	})

	t.Run("keep-alive still serves a second request", func(t *testing.T) {
		t.Parallel()
		c, r := dialHTTP(t, addr)
		for range 2 {
			_, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: tokengate\r\n\r\n")
			require.NoError(t, err)
			status, _ := readStatus(t, r)
			require.Equal(t, http.StatusOK, status)
		}
	})

	t.Run("headers never finished", func(t *testing.T) {
		t.Parallel()
		c, r := dialHTTP(t, addr)
		_, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: tokengate\r\nX-Slow: 1\r\n")
		require.NoError(t, err)
		requireClosed(t, r)
	})

	t.Run("issue: forward-auth POST declaring 100000 bytes and sending none", func(t *testing.T) {
		t.Parallel()
		c, r := dialHTTP(t, addr)
		_, err := io.WriteString(c, "POST /authz/mcp HTTP/1.1\r\nHost: tokengate\r\nContent-Length: 100000\r\n\r\n")
		require.NoError(t, err)
		status, closing := readStatus(t, r)
		require.Equal(t, http.StatusRequestEntityTooLarge, status)
		require.True(t, closing, "Connection: close")
		requireClosed(t, r)
	})

	t.Run("forward-auth POST with a small body that never arrives", func(t *testing.T) {
		t.Parallel()
		c, r := dialHTTP(t, addr)
		_, err := io.WriteString(c, "POST /authz/mcp HTTP/1.1\r\nHost: tokengate\r\nContent-Length: 1000\r\n\r\nabc")
		require.NoError(t, err)
		status, _ := readStatus(t, r)
		require.Equal(t, http.StatusUnauthorized, status, "answered: no token")
		requireClosed(t, r)
	})

	t.Run("chunked body that never ends", func(t *testing.T) {
		t.Parallel()
		c, r := dialHTTP(t, addr)
		_, err := io.WriteString(c, "POST /authz/mcp HTTP/1.1\r\nHost: tokengate\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
		require.NoError(t, err)
		status, _ := readStatus(t, r)
		require.Equal(t, http.StatusUnauthorized, status)
		requireClosed(t, r)
	})

	t.Run("a complete small body is fine", func(t *testing.T) {
		t.Parallel()
		resp, err := http.Post("http://"+addr+"/authz/mcp", "text/plain", strings.NewReader("hello"))
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
}

// TestHTTPLimitsDefaults: zero limits take the documented defaults.
func TestHTTPLimitsDefaults(t *testing.T) {
	t.Parallel()
	s := newHTTPServer(http.NotFoundHandler(), HTTPLimits{})
	require.Equal(t, DefaultHTTPReadHeaderTimeout, s.ReadHeaderTimeout)
	require.Equal(t, DefaultHTTPReadTimeout, s.ReadTimeout)
	require.Equal(t, DefaultHTTPIdleTimeout, s.IdleTimeout)
	require.Zero(t, s.WriteTimeout)
	s = newHTTPServer(http.NotFoundHandler(), HTTPLimits{ReadTimeout: time.Minute, WriteTimeout: time.Second})
	require.Equal(t, time.Minute, s.ReadTimeout)
	require.Equal(t, time.Second, s.WriteTimeout)
}
