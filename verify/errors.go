// Package verify turns a bearer token into a verified identity or a typed
// error. Every failure carries one stable code (token_expired,
// jwks_unavailable, ...) that the deny body, the metric label and the tests
// share.
package verify

import (
	"errors"

	"github.com/tokengate/tokengate/reason"
)

// Error is a verification failure with a stable, one-word code. The code is
// safe to show to clients and to use as a metric label: it never contains a
// token, a claim value or a secret.
type Error struct {
	code        reason.Code
	unavailable bool
}

// Error returns the stable code.
func (e *Error) Error() string { return string(e.code) }

// Code returns the stable code, for example reason.TokenExpired.
func (e *Error) Code() reason.Code { return e.code }

// Unavailable reports whether the verifier could not decide (an identity
// provider was unreachable), as opposed to rejecting the token.
func (e *Error) Unavailable() bool { return e.unavailable }

func newError(code reason.Code) *Error { return &Error{code: code} }

// The sentinel errors. Wrap them with fmt.Errorf("%w: detail", Err...) to add
// a detail for logs; test them with errors.Is.
var (
	ErrTokenMissing             = newError(reason.TokenMissing)
	ErrRequestMalformed         = newError(reason.RequestMalformed)
	ErrTokenMalformed           = newError(reason.TokenMalformed)
	ErrTokenTooLarge            = newError(reason.TokenTooLarge)
	ErrAlgorithmNotAllowed      = newError(reason.AlgorithmNotAllowed)
	ErrSignatureInvalid         = newError(reason.SignatureInvalid)
	ErrKeyUnknown               = newError(reason.KeyUnknown)
	ErrTokenExpired             = newError(reason.TokenExpired)
	ErrTokenNotYetValid         = newError(reason.TokenNotYetValid)
	ErrIssuedInFuture           = newError(reason.IssuedInFuture)
	ErrIssuerUntrusted          = newError(reason.IssuerUntrusted)
	ErrAudienceMismatch         = newError(reason.AudienceMismatch)
	ErrScopeInsufficient        = newError(reason.ScopeInsufficient)
	ErrTokenInactive            = newError(reason.TokenInactive)
	ErrJWKSUnavailable          = &Error{code: reason.JWKSUnavailable, unavailable: true}
	ErrIntrospectionUnavailable = &Error{code: reason.IntrospectionUnavailable, unavailable: true}
)

// Code returns the stable code of err, or reason.TokenInvalid when err
// carries none.
func Code(err error) reason.Code {
	var e *Error
	if errors.As(err, &e) {
		return e.code
	}
	return reason.TokenInvalid
}

// IsUnavailable reports whether err means "could not decide" rather than
// "rejected".
func IsUnavailable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.unavailable
}

// NewError returns a sentinel error with code, for packages whose failures
// join the verification errors (upstream credentials); unavailable marks
// "could not decide" (503).
func NewError(code reason.Code, unavailable bool) *Error {
	return &Error{code: code, unavailable: unavailable}
}

// HasCode reports whether err carries a stable code of its own.
func HasCode(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
