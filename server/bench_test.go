package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/keys"
)

// The gRPC benchmarks run Check through a real gRPC server on loopback,
// client and server in this process: what a Check costs with the
// transport, the protobuf coding, the metrics and the server's options,
// which the authz benchmarks leave out. The no-op case is a plain
// grpc.NewServer() answering OK without looking: the difference between it
// and tokengate's cases is tokengate's own cost. Like the load harness
// (internal/bench), 32 Checks are in flight over 4 connections.

// grpcBenchTokens is how many distinct RS256 tokens the benchmarks cycle
// through.
const grpcBenchTokens = 256

var grpcBench struct {
	once   sync.Once
	dir    string
	tokens []string
	err    error
}

func grpcBenchSetup(b *testing.B) (string, []string) {
	b.Helper()
	f := &grpcBench
	f.once.Do(func() {
		if f.dir, f.err = os.MkdirTemp("", "tokengate-grpc-bench-"); f.err != nil {
			return
		}
		if _, f.err = keys.Generate("RS256", "bench", f.dir); f.err != nil {
			return
		}
		for i := range grpcBenchTokens {
			tok, err := keys.Mint(keys.MintOptions{
				KeyFile: filepath.Join(f.dir, keys.PrivateKeyFile), Alg: "RS256", Kid: "bench",
				Issuer: "https://bench.issuer", Audience: []string{"https://bench.example/mcp"},
				Subject: fmt.Sprintf("user-%d", i), Scope: "mcp:read", TTL: 2 * time.Hour,
			})
			if f.err = err; err != nil {
				return
			}
			f.tokens = append(f.tokens, tok)
		}
	})
	if f.err != nil {
		b.Fatal(f.err)
	}
	return f.dir, f.tokens
}

// grpcNoop allows every request without looking at it.
type grpcNoop struct {
	authv3.UnimplementedAuthorizationServer
}

var grpcNoopOK = &authv3.CheckResponse{
	Status:       &rpcstatus.Status{Code: int32(codes.OK)},
	HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
}

func (grpcNoop) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return grpcNoopOK, nil
}

// startBenchServer runs tokengate with the RS256 verifier and the given
// token cache size, and returns its gRPC address.
func startBenchServer(b *testing.B, cacheSize int) string {
	b.Helper()
	dir, _ := grpcBenchSetup(b)
	yaml := fmt.Sprintf(`
log: {level: error}
server: {grpc_listen: "127.0.0.1:0", http_listen: "127.0.0.1:0", token_cache_size: %d}
verifiers:
  bench: {type: jwt, issuer: "https://bench.issuer", jwks_file: %q, algorithms: [RS256]}
routes:
  - {name: mcp, match: {path_prefix: /}, verifiers: [bench], required_scopes: [mcp:read], resource: "https://bench.example/mcp"}
`, cacheSize, filepath.Join(dir, keys.JWKSFile))
	path := filepath.Join(b.TempDir(), "tokengate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	return srv.GRPCAddr()
}

func startNoopServer(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := grpc.NewServer()
	authv3.RegisterAuthorizationServer(s, grpcNoop{})
	go func() { _ = s.Serve(l) }()
	b.Cleanup(s.Stop)
	return l.Addr().String()
}

// runGRPCChecks sends the requests round-robin over 4 connections from 32
// goroutines and fails on any error or deny.
func runGRPCChecks(b *testing.B, addr string, tokens []string) {
	b.Helper()
	var clients []authv3.AuthorizationClient
	for range 4 {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		clients = append(clients, authv3.NewAuthorizationClient(conn))
	}
	reqs := make([]*authv3.CheckRequest, len(tokens))
	for i, tok := range tokens {
		reqs[i] = &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "POST", Path: "/mcp", Host: "bench.example", Scheme: "http", Protocol: "HTTP/1.1",
				Headers: map[string]string{
					":authority": "bench.example", ":method": "POST", ":path": "/mcp",
					"authorization": "Bearer " + tok, "content-type": "application/json",
					"accept": "application/json, text/event-stream", "user-agent": "bench",
				},
			}},
		}}
	}
	ctx := context.Background()
	check := func(i int) {
		resp, err := clients[i%len(clients)].Check(ctx, reqs[i%len(reqs)])
		if err != nil {
			b.Fatal(err)
		}
		if resp.GetOkResponse() == nil {
			b.Fatalf("denied: %s", resp.GetDeniedResponse().GetBody())
		}
	}
	for i := range reqs { // warm up: connections, caches
		check(i)
	}
	var next atomic.Int64
	b.SetParallelism(32 / max(1, runtimeProcs()))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			check(int(next.Add(1)))
		}
	})
}

// BenchmarkGRPCCheck compares, through gRPC on loopback: the no-op server
// (the floor), tokengate with every token a cache hit, and tokengate with
// the cache off, so that every Check verifies an RS256 signature.
func BenchmarkGRPCCheck(b *testing.B) {
	_, tokens := grpcBenchSetup(b)
	b.Run("noop", func(b *testing.B) { runGRPCChecks(b, startNoopServer(b), tokens) })
	b.Run("hot", func(b *testing.B) { runGRPCChecks(b, startBenchServer(b, config.DefaultTokenCacheSize), tokens) })
	b.Run("cold", func(b *testing.B) { runGRPCChecks(b, startBenchServer(b, 0), tokens) })
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
