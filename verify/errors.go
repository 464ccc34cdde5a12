// Package verify turns a bearer token into a verified identity or a typed
// error. Every failure carries one stable code (token_expired,
// jwks_unavailable, ...) that the deny body, the metric label and the tests
// share.
package verify

import "errors"

// Error is a verification failure with a stable, one-word code. The code is
// safe to show to clients and to use as a metric label: it never contains a
// token, a claim value or a secret.
type Error struct {
	code        string
	unavailable bool
}

// Error returns the stable code.
func (e *Error) Error() string { return e.code }

// Code returns the stable code, for example "token_expired".
func (e *Error) Code() string { return e.code }

// Unavailable reports whether the verifier could not decide (an identity
// provider was unreachable), as opposed to rejecting the token.
func (e *Error) Unavailable() bool { return e.unavailable }

func newError(code string) *Error { return &Error{code: code} }

// The sentinel errors. Wrap them with fmt.Errorf("%w: detail", Err...) to add
// a detail for logs; test them with errors.Is.
var (
	ErrTokenMissing             = newError("token_missing")
	ErrRequestMalformed         = newError("request_malformed")
	ErrTokenMalformed           = newError("token_malformed")
	ErrTokenTooLarge            = newError("token_too_large")
	ErrAlgorithmNotAllowed      = newError("algorithm_not_allowed")
	ErrSignatureInvalid         = newError("signature_invalid")
	ErrKeyUnknown               = newError("key_unknown")
	ErrTokenExpired             = newError("token_expired")
	ErrTokenNotYetValid         = newError("token_not_yet_valid")
	ErrIssuedInFuture           = newError("issued_in_future")
	ErrIssuerUntrusted          = newError("issuer_untrusted")
	ErrAudienceMismatch         = newError("audience_mismatch")
	ErrScopeInsufficient        = newError("scope_insufficient")
	ErrTokenInactive            = newError("token_inactive")
	ErrJWKSUnavailable          = &Error{code: "jwks_unavailable", unavailable: true}
	ErrIntrospectionUnavailable = &Error{code: "introspection_unavailable", unavailable: true}
)

// Code returns the stable code of err, or "token_invalid" when err carries
// none.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.code
	}
	return "token_invalid"
}

// IsUnavailable reports whether err means "could not decide" rather than
// "rejected".
func IsUnavailable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.unavailable
}
