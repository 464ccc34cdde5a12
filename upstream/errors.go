// Package upstream computes what an allowed request's upstream receives in
// Authorization instead of the client's token (no token passthrough): a JWT
// signed by tokengate (mode assertion) or a token obtained by an RFC 8693
// token exchange (mode exchange). It knows nothing of Envoy or HTTP
// rendering: a route asks it for the header value and gets either that
// value or one typed error.
package upstream

import (
	"errors"

	"github.com/tokengate/tokengate/reason"
)

// Error is an upstream-credential failure with a stable, one-word code that
// the deny body, the metric label and the tests share. It never holds a
// token, a secret or a claim value.
type Error struct {
	code        reason.Code
	unavailable bool
}

// Error returns the stable code.
func (e *Error) Error() string { return string(e.code) }

// Code returns the stable code, for example "token_exchange_refused".
func (e *Error) Code() reason.Code { return e.code }

// Unavailable reports whether the credential could not be obtained for a
// reason on tokengate's or the provider's side (answer 503), as opposed to
// the provider refusing this client's token (answer 403).
func (e *Error) Unavailable() bool { return e.unavailable }

// The sentinel errors. Test them with errors.Is.
var (
	// ErrExchangeRefused: the identity provider refused to exchange this
	// client's token (400 invalid_grant, invalid_target,
	// unauthorized_client, invalid_request, invalid_scope or
	// access_denied). Answer 403 access_denied with
	// error_description="token_exchange_refused".
	ErrExchangeRefused = &Error{code: reason.TokenExchangeRefused}
	// ErrExchangeUnavailable: the token endpoint could not be reached, timed
	// out, answered 5xx or garbage, or rejected tokengate's own client
	// credentials. Answer 503.
	ErrExchangeUnavailable = &Error{code: reason.TokenExchangeUnavailable, unavailable: true}
	// ErrAssertionUnavailable: tokengate could not sign an assertion.
	// Answer 503.
	ErrAssertionUnavailable = &Error{code: reason.AssertionUnavailable, unavailable: true}
)

// Code returns the stable code of err, or "" when err carries none.
func Code(err error) reason.Code {
	var e *Error
	if errors.As(err, &e) {
		return e.code
	}
	return ""
}

// IsUnavailable reports whether err means "could not obtain a credential"
// (503) rather than "refused" (403).
func IsUnavailable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.unavailable
}
