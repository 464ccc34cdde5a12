package upstream

import (
	"net/http"
	"time"
)

// idpMaxIdlePerHost is how many idle connections the token-endpoint
// transport keeps to one identity provider (net/http's default is 2, which
// under load makes every exchange beyond two in flight pay a new TLS
// handshake). Mirrors the verify package's identity-provider transport.
const idpMaxIdlePerHost = 64

// idpTransport carries every token exchange and metadata request:
// http.DefaultTransport's settings with more idle connections per host.
// Shared by all exchangers, so a configuration reload keeps the warm
// connections.
var idpTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = idpMaxIdlePerHost
	t.MaxIdleConns = 4 * idpMaxIdlePerHost
	return t
}()

// newHTTPClient returns a client for token-endpoint calls: bounded time and
// no redirects (a token endpoint that redirects a POST carrying a client
// secret is misconfigured; the 3xx is treated as unavailable).
func newHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: idpTransport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
