package upstream

import (
	"net/http"
	"time"

	"github.com/tokengate/tokengate/verify"
)

// newHTTPClient returns a client for token-endpoint calls over the
// identity-provider transport verify shares (more idle connections per
// host than net/http's default): bounded time and no redirects (a token
// endpoint that redirects a POST carrying a client secret is misconfigured;
// the 3xx is treated as unavailable).
func newHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: verify.IdPTransport(),
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
