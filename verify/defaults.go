package verify

import "time"

// Defaults of the verifier options. The constructors apply them to unset
// (zero) options, and the configuration fills them in and documents them,
// so each value is written here only.
const (
	// DefaultJWKSRefresh is how often a remote JWKS is fetched again.
	DefaultJWKSRefresh = 15 * time.Minute
	// DefaultJWKSMinRefetchInterval bounds the early refetches after an
	// unknown kid: at most one per interval.
	DefaultJWKSMinRefetchInterval = 10 * time.Second
	// DefaultJWKSTimeout bounds one JWKS (or discovery) fetch.
	DefaultJWKSTimeout = 5 * time.Second

	// DefaultIntrospectionTimeout bounds one introspection request.
	DefaultIntrospectionTimeout = 2 * time.Second
	// DefaultIntrospectionCacheTTL is how long an active introspection
	// result is reused, never beyond the token's own exp.
	DefaultIntrospectionCacheTTL = 60 * time.Second
	// DefaultIntrospectionCacheSize bounds the cached introspection results.
	DefaultIntrospectionCacheSize = 10000
	// DefaultClientAuth is how tokengate authenticates to an introspection
	// endpoint unless told otherwise: client_secret_basic.
	DefaultClientAuth = ClientAuthBasic
)

// Client authentication methods at an introspection endpoint (RFC 6749
// section 2.3.1).
const (
	ClientAuthBasic = "basic" // client_secret_basic: an Authorization header
	ClientAuthPost  = "post"  // client_secret_post: in the form body
)
