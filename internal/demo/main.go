// Command demo runs Envoy, tokengate and the sample MCP server on localhost
// with a freshly generated key, prints a ready token and copy-paste curl
// commands, and stops everything on Ctrl-C. It works offline: the key is
// local (public_key_file), nothing is fetched. Run it with `make demo`.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/tokengate/tokengate/internal/envoycfg"
	"github.com/tokengate/tokengate/internal/stack"
	"github.com/tokengate/tokengate/keys"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", ".demo", "working directory for keys, config and logs (recreated)")
	binDir := flag.String("bin", "bin", "directory holding the tokengate and mcp-sample binaries")
	port := flag.Int("port", 10000, "Envoy listener port (the others follow: +1 Envoy admin, +2 gRPC, +3 HTTP, +4 mcp-sample)")
	flag.Parse()

	envoyBin, err := envoycfg.Binary()
	if err != nil {
		return err
	}
	ports := stack.Ports{Envoy: *port, EnvoyAdmin: *port + 1, GRPC: *port + 2, HTTP: *port + 3, Upstream: *port + 4}
	for _, p := range []int{ports.Envoy, ports.EnvoyAdmin, ports.GRPC, ports.HTTP, ports.Upstream} {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return fmt.Errorf("port %d is busy; pick another base with `make demo DEMO_PORT=20000`", p)
		}
		l.Close()
	}

	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(abs); err != nil {
		return err
	}
	keyDir := filepath.Join(abs, "keys")
	if _, err := keys.Generate("ES256", "demo-key", keyDir); err != nil {
		return err
	}
	const issuer = "https://issuer.demo.tokengate.local"
	resource := fmt.Sprintf("http://127.0.0.1:%d/mcp", ports.Envoy)
	cfg := fmt.Sprintf(`# Written by make demo.
log: {level: info, format: text}
verifiers:
  demo:
    type: jwt
    issuer: %s
    public_key_file: %s
    algorithms: [ES256]
scope_hierarchy:
  mcp:admin: [mcp:write]
  mcp:write: [mcp:read]
routes:
  - name: mcp
    match: {path_prefix: /mcp}
    verifiers: [demo]
    required_scopes: [mcp:read]
    resource: %s
    mcp:
      operations:
        - {method: tools/call, name: admin_reset, scopes: [mcp:admin]}
`, issuer, filepath.Join(keyDir, keys.PublicKeyFile), resource)
	cfgPath := filepath.Join(abs, "tokengate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	token, err := keys.Mint(keys.MintOptions{
		KeyFile: filepath.Join(keyDir, keys.PrivateKeyFile), Alg: "ES256", Kid: "demo-key",
		Issuer: issuer, Audience: []string{resource}, Subject: "alice",
		Scope: "mcp:read mcp:write", TTL: 24 * time.Hour,
	})
	if err != nil {
		return err
	}
	tokenPath := filepath.Join(abs, "token")
	if err := os.WriteFile(tokenPath, []byte(token+"\n"), 0o600); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := stack.Start(ctx, stack.Options{
		Tokengate: filepath.Join(*binDir, "tokengate"),
		MCPSample: filepath.Join(*binDir, "mcp-sample"),
		Envoy:     envoyBin,
		Config:    cfgPath,
		Dir:       abs,
		Ports:     ports,
		// The JSON-RPC body goes to tokengate with each check, so that
		// operation rules work for clients that send no Mcp-* headers.
		EnvoyRequestBody: true,
	})
	if err != nil {
		return err
	}
	defer s.Stop()

	rel, _ := filepath.Rel(mustGetwd(), tokenPath)
	const adminCall = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"admin_reset","arguments":{},` +
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
	url := s.EnvoyURL() + "/mcp"
	fmt.Printf(`
tokengate demo is up: Envoy %s -> tokengate (ext_authz gRPC :%d) -> mcp-sample :%d
Config %s, logs in %s, Envoy %s

A token for "alice" with scopes "mcp:read mcp:write" (valid 24h, also in %s):

%s

Initialize an MCP session through Envoy (200, with an Mcp-Session-Id header):

curl -i %s \
  -H "Authorization: Bearer $(cat %s)" \
  -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
  -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'

Without a token (401 and the challenge that points MCP clients at the metadata):

curl -i %s -X POST

The protected resource metadata (RFC 9728), answered by tokengate through Envoy:

curl -s %s/.well-known/oauth-protected-resource/mcp

Call the privileged admin_reset tool as an MCP 2026-07-28 client does (no session; the Mcp-Method and
Mcp-Name headers name the operation, and tokengate checks them against the body). It needs mcp:admin,
which this token lacks, so the answer is the step-up 403 whose challenge names the scopes to ask for
(scope="mcp:read mcp:admin"):

curl -i %s \
  -H "Authorization: Bearer $(cat %s)" \
  -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
  -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: admin_reset' \
  -d '%s'

Mint a token with those scopes and call it again with "Authorization: Bearer $ADMIN" (200: the tool runs
and answers "reset"):

ADMIN=$(bin/tokengate token mint --key %s --alg ES256 --kid demo-key --iss %s --aud %s --sub alice --scope "mcp:read mcp:admin")

Mint another token (say, without mcp:read, for a 403):

bin/tokengate token mint --key %s --alg ES256 --kid demo-key --iss %s --aud %s --sub bob --scope mcp:write

Metrics: curl -s %s/metrics | grep tokengate_check_total

Press Ctrl-C to stop everything.
`, s.EnvoyURL(), ports.GRPC, ports.Upstream, cfgPath, abs, envoyBin, rel, token, url, rel, url, s.EnvoyURL(),
		url, rel, adminCall, filepath.Join(keyDir, keys.PrivateKeyFile), issuer, resource,
		filepath.Join(keyDir, keys.PrivateKeyFile), issuer, resource, s.TokengateHTTP())

	<-ctx.Done()
	fmt.Println("\nstopping...")
	return nil
}

func mustGetwd() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	return wd
}
