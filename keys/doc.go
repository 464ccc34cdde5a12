// Package keys generates signing keys for tokengate, loads them from disk
// and mints signed JWTs with them.
//
// All cryptography is delegated to the Go standard library (key generation,
// PEM and x509 encoding) and to github.com/lestrrat-go/jwx/v3 (JWK, JWKS and
// JWS signing). Nothing in this package implements a primitive itself.
package keys
