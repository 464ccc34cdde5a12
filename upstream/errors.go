// Package upstream computes what an allowed request's upstream receives in
// Authorization instead of the client's token (no token passthrough): a JWT
// signed by tokengate (mode assertion) or a token obtained by an RFC 8693
// token exchange (mode exchange). It knows nothing of Envoy or HTTP
// rendering: a route asks it for the header value and gets either that
// value or one typed error.
package upstream

import (
	"github.com/tokengate/tokengate/reason"
	"github.com/tokengate/tokengate/verify"
)

// The sentinel errors: verify.Error values, so that one code type and one
// Unavailable flag serve every failure. Test them with errors.Is.
var (
	// ErrExchangeRefused: the identity provider refused to exchange this
	// client's token (400 invalid_grant, invalid_target,
	// unauthorized_client, invalid_request, invalid_scope or
	// access_denied). Answer 403 access_denied with
	// error_description="token_exchange_refused".
	ErrExchangeRefused = verify.NewError(reason.TokenExchangeRefused, false)
	// ErrExchangeUnavailable: the token endpoint could not be reached, timed
	// out, answered 5xx or garbage, or rejected tokengate's own client
	// credentials. Answer 503.
	ErrExchangeUnavailable = verify.NewError(reason.TokenExchangeUnavailable, true)
	// ErrAssertionUnavailable: tokengate could not sign an assertion.
	// Answer 503.
	ErrAssertionUnavailable = verify.NewError(reason.AssertionUnavailable, true)
)

// Code returns the stable code of err, or "" when err carries none.
func Code(err error) reason.Code {
	if verify.HasCode(err) {
		return verify.Code(err)
	}
	return ""
}

// IsUnavailable reports whether err means "could not obtain a credential"
// (503) rather than "refused" (403).
func IsUnavailable(err error) bool { return verify.IsUnavailable(err) }
