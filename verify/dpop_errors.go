package verify

import (
	"errors"
	"fmt"

	"github.com/tokengate/tokengate/verify/dpop"
)

// The sender-constraint sentinels (DPoP, RFC 9449; certificate binding, RFC
// 8705). Their codes are the dpop package's; FromDPoP turns a dpop error
// into one of them so that Code, IsUnavailable and errors.Is work as for
// every other verification error.
var (
	// ErrDPoPProofInvalid: 401, WWW-Authenticate: DPoP
	// error="invalid_dpop_proof", algs="...".
	ErrDPoPProofInvalid = newError(dpop.CodeInvalidProof)
	// ErrDPoPNonceRequired: 401, error="use_dpop_nonce" plus a DPoP-Nonce
	// header with dpop.NonceOf(err).
	ErrDPoPNonceRequired = newError(dpop.CodeUseNonce)
	// ErrDPoPReplayStoreUnavailable: 503, the proof's jti could not be
	// recorded.
	ErrDPoPReplayStoreUnavailable = &Error{code: dpop.CodeReplayStoreUnavailable, unavailable: true}
	// ErrClientCertificateMissing: 401 invalid_token, a certificate-bound
	// token without a (usable) client certificate.
	ErrClientCertificateMissing = newError(dpop.CodeCertificateMissing)
	// ErrCertificateBindingMismatch: 401 invalid_token, the client
	// certificate is not the token's cnf.x5t#S256.
	ErrCertificateBindingMismatch = newError(dpop.CodeCertificateMismatch)
	// ErrCertificateBindingRequired: 401 invalid_token, a
	// require_mtls_binding route got a token without cnf.x5t#S256.
	ErrCertificateBindingRequired = newError(dpop.CodeCertificateBindingRequired)
	// ErrTokenNotDPoPBound: 401 invalid_token, DPoP scheme without cnf.jkt.
	ErrTokenNotDPoPBound = newError(dpop.CodeTokenNotBound)
	// ErrDPoPBoundTokenAsBearer: 401 invalid_token, a cnf.jkt token sent
	// as Bearer (downgrade).
	ErrDPoPBoundTokenAsBearer = newError(dpop.CodeBoundTokenAsBearer)
	// ErrDPoPRequired: 401 invalid_token, Bearer on a require_dpop route.
	ErrDPoPRequired = newError(dpop.CodeDPoPRequired)
	// ErrConfirmationMalformed: 401 invalid_token, cnf is not an object of
	// strings.
	ErrConfirmationMalformed = newError(dpop.CodeConfirmationMalformed)
)

// dpopSentinels maps each dpop code to its verify sentinel.
var dpopSentinels = map[string]*Error{
	dpop.CodeInvalidProof:               ErrDPoPProofInvalid,
	dpop.CodeUseNonce:                   ErrDPoPNonceRequired,
	dpop.CodeReplayStoreUnavailable:     ErrDPoPReplayStoreUnavailable,
	dpop.CodeCertificateMissing:         ErrClientCertificateMissing,
	dpop.CodeCertificateMismatch:        ErrCertificateBindingMismatch,
	dpop.CodeCertificateBindingRequired: ErrCertificateBindingRequired,
	dpop.CodeTokenNotBound:              ErrTokenNotDPoPBound,
	dpop.CodeBoundTokenAsBearer:         ErrDPoPBoundTokenAsBearer,
	dpop.CodeDPoPRequired:               ErrDPoPRequired,
	dpop.CodeConfirmationMalformed:      ErrConfirmationMalformed,
}

// FromDPoP wraps an error of the dpop package in the matching verify
// sentinel; the dpop error stays in the chain, so errors.Is(err,
// dpop.ErrProofURI) and dpop.NonceOf(err) still work. nil stays nil; an
// error without a dpop code becomes ErrDPoPProofInvalid (fail closed).
func FromDPoP(err error) error {
	if err == nil {
		return nil
	}
	var e *dpop.Error
	if errors.As(err, &e) {
		if s, ok := dpopSentinels[e.Code()]; ok {
			return fmt.Errorf("%w: %w", s, err)
		}
	}
	return fmt.Errorf("%w: %w", ErrDPoPProofInvalid, err)
}
