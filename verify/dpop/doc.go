// Package dpop checks sender-constrained access tokens: DPoP proofs
// (RFC 9449) and certificate-bound tokens (RFC 8705 section 3).
//
// A Checker holds the fixed setup (allowed algorithms, proof window, nonces,
// replay store, clock); Check takes one request's proofs, method, URL and
// access token plus the token's cnf.jkt and returns nil or one *Error with a
// stable code. The package knows nothing of routes, Envoy or HTTP framing:
// the caller passes the DPoP header values and the request URL it rebuilt
// from :scheme (or a trusted x-forwarded-proto), :authority and :path.
//
// The certificate functions (CertificateThumbprint, ThumbprintFromEnvoy,
// ThumbprintFromXFCC, CheckCertificateBinding) compute and compare the
// x5t#S256 confirmation of RFC 8705.
package dpop
