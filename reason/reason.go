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
	// ClaimMismatch: a claim a jwt verifier's required_claims pins is
	// missing or has another value (contract section 13).
	ClaimMismatch Code = "claim_mismatch"
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

// Browser clients (CORS) and MCP operations.
const (
	Preflight           Code = "preflight"             // a CORS preflight answered by tokengate
	OriginNotAllowed    Code = "origin_not_allowed"    // Origin is neither the request's own nor allowed
	MCPOperationUnknown Code = "mcp_operation_unknown" // a POST whose JSON-RPC operation cannot be read
	MCPHeaderMismatch   Code = "mcp_header_mismatch"   // Mcp-Method / Mcp-Name disagree with the body
	MCPOperationDenied  Code = "mcp_operation_denied"  // unlisted: deny, and no rule names the operation
)

// Upstream credentials (no token passthrough).
const (
	TokenExchangeRefused     Code = "token_exchange_refused"     // the identity provider refused the exchange (403)
	TokenExchangeUnavailable Code = "token_exchange_unavailable" // the token endpoint could not answer (503)
	AssertionUnavailable     Code = "assertion_unavailable"      // tokengate could not sign an assertion (503)
)

// AuthorityInvalid: the request's :authority (or forwarded host) is not an
// RFC 3986 host with an optional numeric port (400, before routing).
const AuthorityInvalid Code = "authority_invalid"
