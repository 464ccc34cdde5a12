// Package reason names the outcome of every request with one stable word:
// the same Code appears in the deny body's error_description, the
// tokengate_check_total reason label, the deny log line and the tests. A
// Code never carries a token, a claim value or a secret.
package reason

// Code is one stable reason word, for example "token_expired".
type Code string

// String returns the word.
func (c Code) String() string { return string(c) }

// Outcomes that are not failures.
const (
	OK        Code = "ok"        // allowed with a verified identity
	Anonymous Code = "anonymous" // allowed on an allow_anonymous route
	Metadata  Code = "metadata"  // an RFC 9728 document answered by tokengate
)

// Routing.
const (
	RouteNotFound Code = "route_not_found" // no route matched the request
	RouteUnknown  Code = "route_unknown"   // the pinned route does not exist
)

// The request and its credential.
const (
	TokenMissing        Code = "token_missing"
	RequestMalformed    Code = "request_malformed"
	TokenMalformed      Code = "token_malformed"
	TokenTooLarge       Code = "token_too_large"
	AlgorithmNotAllowed Code = "algorithm_not_allowed"
	SignatureInvalid    Code = "signature_invalid"
	KeyUnknown          Code = "key_unknown"
	TokenExpired        Code = "token_expired"
	TokenNotYetValid    Code = "token_not_yet_valid"
	IssuedInFuture      Code = "issued_in_future"
	IssuerUntrusted     Code = "issuer_untrusted"
	AudienceMismatch    Code = "audience_mismatch"
	ScopeInsufficient   Code = "scope_insufficient"
	TokenInactive       Code = "token_inactive"
	// TokenInvalid stands for an error that carries no code of its own.
	TokenInvalid Code = "token_invalid"
)

// Identity providers that could not answer (503).
const (
	JWKSUnavailable          Code = "jwks_unavailable"
	IntrospectionUnavailable Code = "introspection_unavailable"
)

// Forward-auth requests whose original request cannot be rebuilt.
const (
	ForwardedURIMissing      Code = "forwarded_uri_missing"
	ForwardedHeadersConflict Code = "forwarded_headers_conflict"
	PathNotNormalized        Code = "path_not_normalized"
)
