package keys

import (
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/tokengate/tokengate/jose"
)

// Algorithms returns the names of the JWS algorithms Generate and Mint
// support (jose.Generated).
func Algorithms() []string {
	gen := jose.Generated()
	out := make([]string, len(gen))
	for i, a := range gen {
		out[i] = string(a)
	}
	return out
}

// MinSecretLen returns the minimum secret length in bytes for an HMAC
// algorithm (32, 48 or 64 for HS256, HS384 or HS512) and 0 for any other
// algorithm.
func MinSecretLen(alg string) int {
	s, _ := lookupSpec(alg)
	return s.MinSecret
}

// lookupSpec finds the spec of an algorithm Generate and Mint support.
func lookupSpec(alg string) (jose.Spec, bool) {
	s, ok := jose.Lookup(alg)
	if !ok || !s.Generate {
		return jose.Spec{}, false
	}
	return s, true
}

// resolveAlg returns the spec and the jwx algorithm for a supported name.
func resolveAlg(alg string) (jose.Spec, jwa.SignatureAlgorithm, error) {
	s, ok := lookupSpec(alg)
	if !ok {
		return jose.Spec{}, jwa.EmptySignatureAlgorithm(), fmt.Errorf("unsupported algorithm %q (supported: %s)", alg, jose.Join(jose.Generated(), ", "))
	}
	ja, ok := jwa.LookupSignatureAlgorithm(string(s.Alg))
	if !ok {
		return jose.Spec{}, jwa.EmptySignatureAlgorithm(), fmt.Errorf("algorithm %q is not registered in jwx", alg)
	}
	return s, ja, nil
}
