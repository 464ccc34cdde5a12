package verify

import "context"

// Kind is the family of a verifier; it decides which tokens it is offered.
type Kind int

// The verifier kinds.
const (
	KindJWT Kind = iota + 1
	KindIntrospection
	KindStatic
)

// Identity is what a verifier learned from an accepted token.
type Identity struct {
	// Verifier is the name of the verifier that accepted the token.
	Verifier string
	Subject  string
	Issuer   string
	ClientID string
	Scopes   []string
	// Payload is the verified JSON claims object (nil for static tokens).
	Payload []byte
}

// Verifier checks a bearer token. Implementations are safe for concurrent
// use and do not lock on the common path.
type Verifier interface {
	// Name is the verifier's configured name.
	Name() string
	// Kind is the verifier's family.
	Kind() Kind
	// Issuer is the exact "iss" a JWT verifier accepts ("" for other kinds).
	Issuer() string
	// Verify checks t and returns the identity, or an error wrapping one of
	// this package's sentinel errors. audiences are the expected audiences
	// when the verifier has none of its own.
	Verify(ctx context.Context, t *Token, audiences []string) (*Identity, error)
	// Ready reports whether the verifier can verify now (keys loaded).
	Ready() bool
	// Start runs background work (key refresh) until ctx ends.
	Start(ctx context.Context)
}
