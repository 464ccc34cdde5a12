package dpop

import "errors"

// The stable codes. A caller turns them into its own typed errors (see
// verify/dpop_errors.go) and into the WWW-Authenticate error attribute.
const (
	// CodeInvalidProof: the DPoP proof is missing, malformed or fails a
	// rule of RFC 9449 section 4.3. Answer 401 with
	// WWW-Authenticate: DPoP error="invalid_dpop_proof".
	CodeInvalidProof = "invalid_dpop_proof"
	// CodeUseNonce: the server requires a nonce the proof lacks or has
	// stale. Answer 401 with error="use_dpop_nonce" and a DPoP-Nonce
	// header holding NonceOf(err).
	CodeUseNonce = "use_dpop_nonce"
	// CodeReplayStoreUnavailable: the proof's jti could not be recorded.
	// Answer 503: the proof is never accepted unrecorded.
	CodeReplayStoreUnavailable = "dpop_replay_store_unavailable"
	// CodeCertificateMissing: a certificate-bound token came without a
	// usable client certificate. Answer 401 invalid_token.
	CodeCertificateMissing = "client_certificate_missing"
	// CodeCertificateMismatch: the client certificate is not the one the
	// token is bound to (cnf.x5t#S256). Answer 401 invalid_token.
	CodeCertificateMismatch = "certificate_binding_mismatch"
	// CodeCertificateBindingRequired: a require_mtls_binding route got a
	// token without cnf.x5t#S256. Answer 401 invalid_token.
	CodeCertificateBindingRequired = "certificate_binding_required"
	// CodeTokenNotBound: a token presented with the DPoP scheme has no
	// cnf.jkt. Answer 401 invalid_token (contract section 11).
	CodeTokenNotBound = "token_not_dpop_bound"
	// CodeBoundTokenAsBearer: a DPoP-bound token (cnf.jkt) presented as
	// Bearer, a downgrade. Answer 401 invalid_token with a DPoP challenge.
	CodeBoundTokenAsBearer = "dpop_bound_token_as_bearer"
	// CodeDPoPRequired: a require_dpop route got a Bearer token. Answer 401
	// invalid_token with a DPoP challenge.
	CodeDPoPRequired = "dpop_required"
	// CodeConfirmationMalformed: the token's cnf member is not an object
	// of strings. Answer 401 invalid_token.
	CodeConfirmationMalformed = "cnf_malformed"
)

// Error is a failure with a stable code and a finer reason. Code() is safe
// for clients and metric labels; Reason() names the rule that failed and is
// meant for logs and tests. Neither contains a token, proof, key or claim
// value.
type Error struct {
	code        string
	reason      string
	unavailable bool
	nonce       string
}

// Error returns "code: reason".
func (e *Error) Error() string {
	if e.reason == "" {
		return e.code
	}
	return e.code + ": " + e.reason
}

// Code returns the stable code, for example "invalid_dpop_proof".
func (e *Error) Code() string { return e.code }

// Reason returns the rule that failed, for example "htu"; empty for the
// class sentinels.
func (e *Error) Reason() string { return e.reason }

// Unavailable reports whether the check could not decide (the replay store
// is unreachable), as opposed to rejecting the proof.
func (e *Error) Unavailable() bool { return e.unavailable }

// Is makes every reason sentinel match its class sentinel:
// errors.Is(ErrProofURI, ErrInvalidProof) is true, and an error carrying a
// nonce matches the nonce sentinel of its reason.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || t.code != e.code {
		return false
	}
	return t.reason == "" || t.reason == e.reason
}

func reasonError(class *Error, reason string) *Error {
	return &Error{code: class.code, reason: reason, unavailable: class.unavailable}
}

// The class sentinels: one per code.
var (
	ErrInvalidProof           = &Error{code: CodeInvalidProof}
	ErrUseNonce               = &Error{code: CodeUseNonce}
	ErrReplayStoreUnavailable = &Error{code: CodeReplayStoreUnavailable, unavailable: true}
	ErrCertificateMissing     = &Error{code: CodeCertificateMissing}
	ErrCertificateMismatch    = &Error{code: CodeCertificateMismatch}

	// Presentation rules: which scheme and binding a token needs.
	ErrCertificateBindingRequired = &Error{code: CodeCertificateBindingRequired}
	ErrTokenNotBound              = &Error{code: CodeTokenNotBound}
	ErrBoundTokenAsBearer         = &Error{code: CodeBoundTokenAsBearer}
	ErrDPoPRequired               = &Error{code: CodeDPoPRequired}
	ErrConfirmationMalformed      = &Error{code: CodeConfirmationMalformed}
)

// The reason sentinels. Each matches its class with errors.Is.
var (
	// Proof rules (class ErrInvalidProof).
	ErrProofMissing        = reasonError(ErrInvalidProof, "missing")      // no DPoP header
	ErrProofCount          = reasonError(ErrInvalidProof, "multiple")     // more than one DPoP header
	ErrProofMalformed      = reasonError(ErrInvalidProof, "malformed")    // not one compact JWS, bad JSON, missing claim
	ErrProofType           = reasonError(ErrInvalidProof, "typ")          // typ is not dpop+jwt
	ErrProofAlgorithm      = reasonError(ErrInvalidProof, "alg")          // alg not allowed (none, HS*, unlisted)
	ErrProofKey            = reasonError(ErrInvalidProof, "jwk")          // jwk missing, private, symmetric or unfit for alg
	ErrProofSignature      = reasonError(ErrInvalidProof, "signature")    // signature does not verify with jwk
	ErrProofMethod         = reasonError(ErrInvalidProof, "htm")          // htm is not the request method
	ErrProofURI            = reasonError(ErrInvalidProof, "htu")          // htu is not the request URI
	ErrProofExpired        = reasonError(ErrInvalidProof, "iat_stale")    // iat older than max age + skew
	ErrProofIssuedInFuture = reasonError(ErrInvalidProof, "iat_future")   // iat later than now + skew
	ErrProofTokenHash      = reasonError(ErrInvalidProof, "ath")          // ath missing or not SHA-256 of the token
	ErrProofKeyMismatch    = reasonError(ErrInvalidProof, "jkt_mismatch") // jwk thumbprint is not cnf.jkt
	ErrProofReplayed       = reasonError(ErrInvalidProof, "jti_replayed") // jti seen inside the window

	// Nonce rules (class ErrUseNonce). The errors Check returns carry the
	// nonce to send; see NonceOf.
	ErrNonceMissing = reasonError(ErrUseNonce, "nonce_missing")
	ErrNonceStale   = reasonError(ErrUseNonce, "nonce_stale")
	ErrNonceInvalid = reasonError(ErrUseNonce, "nonce_invalid")

	// Replay store failures (class ErrReplayStoreUnavailable).
	ErrReplayStoreFull = reasonError(ErrReplayStoreUnavailable, "full")
	ErrReplayStoreDown = reasonError(ErrReplayStoreUnavailable, "unreachable")

	// Certificate binding.
	ErrCertificateMalformed = reasonError(ErrCertificateMissing, "malformed")
)

// NonceOf returns the nonce to send in a DPoP-Nonce header when err is a
// use_dpop_nonce error, and "" otherwise.
func NonceOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.code == CodeUseNonce {
		return e.nonce
	}
	return ""
}
