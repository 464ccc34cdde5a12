// Command mcp-sample is a minimal MCP server used behind Envoy and the auth
// gateway in end-to-end tests and demos.
//
// It serves MCP over streamable HTTP at /mcp with three tools:
//
//   - echo: returns its "text" argument as text content and as structured
//     output {"text": ...}.
//   - whoami: returns a flat JSON object of the x-auth-* request headers it
//     received (lower-cased name → first value) plus "authorization_present",
//     which reports whether an Authorization header reached the server, and
//     with one, "authorization_scheme" and (for a JWT) "authorization_claims",
//     the token's payload decoded but not verified.
//   - admin_reset: returns "reset" and writes "tool admin_reset ran" to
//     stderr; it stands for a privileged tool.
//
// It also serves the prompt "greeting" and the resource
// "sample://secret/report". Requests with MCP-Protocol-Version 2026-07-28 or
// later are served without a session (the SDK serves that revision only
// statelessly); older clients get the 2025-11-25 session protocol
// (initialize, Mcp-Session-Id).
//
// GET /healthz returns 200 "ok" so scripts can wait for readiness.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// shutdownTimeout bounds how long graceful shutdown waits for in-flight
// requests to finish before the remaining connections are closed forcibly.
const shutdownTimeout = 5 * time.Second

// main parses flags, runs the server and exits non-zero on failure.
func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "mcp-sample: %v\n", err)
		os.Exit(1)
	}
}

// run parses args, listens on the configured address, serves until SIGINT or
// SIGTERM, and then shuts the server down gracefully.
func run(args []string) error {
	fs := flag.NewFlagSet("mcp-sample", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8000", "address to listen on (host:port)")
	disableLocalhostProtection := fs.Bool("disable-localhost-protection", false,
		"disable the MCP SDK's DNS-rebinding protection, which rejects requests arriving on a "+
			"loopback address with a non-localhost Host header (403); needed when a proxy "+
			"(e.g. Envoy) forwards a non-localhost Host")
	verifyAssertion := fs.String("verify-assertion", "",
		"JWKS URL of tokengate's assertion keys (http://HOST:9192/.well-known/jwks.json): refuse every "+
			"request without a valid tokengate assertion in Authorization (401)")
	audience := fs.String("audience", "", "the audience the assertion must carry (with --verify-assertion)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}

	// Request contexts derive from baseCtx, which is cancelled when shutdown
	// starts. Long-lived SSE streams (e.g. the client's standalone GET stream)
	// only end when their request context is done, so without this Shutdown
	// would always wait for the full timeout while a client is connected.
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	handler, err := withAssertion(baseCtx, newHandler(options{DisableLocalhostProtection: *disableLocalhostProtection}), *verifyAssertion, *audience)
	if err != nil {
		_ = ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}
	srv.RegisterOnShutdown(cancelBase)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(os.Stderr, "mcp-sample listening on http://%s/mcp\n", ln.Addr())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stop()

	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Some requests did not finish in time; close their connections.
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
