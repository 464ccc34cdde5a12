package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tokengate/tokengate/keys"
)

// TestDPoPThroughEnvoy (contract section 11): a DPoP-bound token through the
// real Envoy with fresh proofs; the same proof replayed, a proof for
// another URL, and the token downgraded to Bearer are refused; and the
// replayed proof is refused by a second tokengate replica that shares the
// redis replay store, as a horizontally scaled deployment does.
func TestDPoPThroughEnvoy(t *testing.T) {
	redisURL := startRedis(t)
	e := startEnv(t, envOptions{topLevel: "dpop:\n  replay_store: " + redisURL + "\n"})
	clientDir := e.newKey(t, "dpop-client", "ES256")
	jkt, err := keys.KeyThumbprintFile(filepath.Join(clientDir, keys.PrivateKeyFile))
	require.NoError(t, err)
	clientKey, err := keys.LoadPrivateKey(filepath.Join(clientDir, keys.PrivateKeyFile))
	require.NoError(t, err)
	token := e.mint(t, "es", "ES256", func(o *keys.MintOptions) { o.CnfJKT = jkt })
	url := e.stack.EnvoyURL() + "/mcp"
	proof := func(u string) string {
		p, err := keys.MintDPoPProof(clientKey, "ES256", "POST", u, token, "", time.Time{}, "")
		require.NoError(t, err)
		return p
	}
	call := func(t *testing.T, headers map[string]string) *http.Response {
		resp, _, err := initialize(http.DefaultClient, url, headers)
		require.NoError(t, err)
		return resp
	}

	first := proof(url)
	t.Run("a fresh proof each time: allowed", func(t *testing.T) {
		assert.Equal(t, http.StatusOK, call(t, map[string]string{"Authorization": "DPoP " + token, "DPoP": first}).StatusCode)
		assert.Equal(t, http.StatusOK, call(t, map[string]string{"Authorization": "DPoP " + token, "DPoP": proof(url)}).StatusCode)
	})
	for _, tc := range []struct{ name, auth, proof, challenge string }{
		{"the same proof replayed", "DPoP " + token, first, `DPoP error="invalid_dpop_proof"`},
		{"a proof for another URL", "DPoP " + token, proof(e.stack.EnvoyURL() + "/other"), `DPoP error="invalid_dpop_proof"`},
		{"the token as Bearer", "Bearer " + token, "", `Bearer error="invalid_token", error_description="dpop_bound_token_as_bearer"`},
	} {
		t.Run(tc.name+": 401", func(t *testing.T) {
			h := map[string]string{"Authorization": tc.auth}
			if tc.proof != "" {
				h["DPoP"] = tc.proof
			}
			resp := call(t, h)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.True(t, strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), tc.challenge), resp.Header.Get("WWW-Authenticate"))
		})
	}

	t.Run("a proof used on one replica is refused by another sharing redis", func(t *testing.T) {
		addr := startReplica(t, e.cfgPath)
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer conn.Close()
		client := authv3.NewAuthorizationClient(conn)
		u := e.stack.EnvoyURL() + "/mcp"
		host := strings.TrimPrefix(e.stack.EnvoyURL(), "http://")
		check := func(p string) *authv3.CheckResponse {
			resp, err := client.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
				Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
					Method: "POST", Host: host, Path: "/mcp", Scheme: "http",
					Headers: map[string]string{"authorization": "DPoP " + token, "dpop": p},
				}}}})
			require.NoError(t, err)
			return resp
		}
		fresh := proof(u)
		assert.NotNil(t, check(fresh).GetOkResponse(), "the replica accepts a fresh proof")
		// Through Envoy (replica one) the same proof is a replay now.
		assert.Equal(t, http.StatusUnauthorized, call(t, map[string]string{"Authorization": "DPoP " + token, "DPoP": fresh}).StatusCode)
		// And the proof replica one saw first is a replay on replica two.
		d := check(first).GetDeniedResponse()
		require.NotNil(t, d)
		assert.Equal(t, 401, int(d.GetStatus().GetCode()))
		assert.Contains(t, d.GetBody(), "invalid_dpop_proof")
	})
}

// startRedis runs a real redis-server on a free loopback port for the test.
// Under CI=true a missing redis-server fails the test.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not installed (make redis): %v", err)
		}
		t.Skip("redis-server not installed (make redis installs it)")
	}
	port := freeTCPPort(t)
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", port))
	return fmt.Sprintf("redis://127.0.0.1:%d/0", port)
}

// startReplica runs a second tokengate on the same configuration file and
// returns its gRPC address.
func startReplica(t *testing.T, cfgPath string) string {
	t.Helper()
	grpcAddr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	cmd := exec.Command(bins.tokengate, "serve", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "TOKENGATE_SERVER__GRPC_LISTEN="+grpcAddr, "TOKENGATE_SERVER__HTTP_LISTEN="+httpAddr)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return grpcAddr
			}
		}
		require.True(t, time.Now().Before(deadline), "the second replica never became ready")
		time.Sleep(50 * time.Millisecond)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitTCP(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		require.True(t, time.Now().Before(deadline), "%s never answered", addr)
		time.Sleep(20 * time.Millisecond)
	}
}
