package keys

import (
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwa"
)

// keyKind is the family of key an algorithm signs with.
type keyKind int

const (
	kindRSA keyKind = iota + 1
	kindEC
	kindEd25519
	kindHMAC
)

// algSpec describes how keys for one supported algorithm look.
type algSpec struct {
	name    string
	kind    keyKind
	rsaBits int    // RSA modulus size used by Generate
	curve   string // elliptic.Curve name required for EC algorithms
	secret  int    // minimum HMAC secret length in bytes
}

// specs lists the supported algorithms in the order Algorithms reports them.
var specs = []algSpec{
	{name: "RS256", kind: kindRSA, rsaBits: 2048},
	{name: "RS384", kind: kindRSA, rsaBits: 3072},
	{name: "RS512", kind: kindRSA, rsaBits: 4096},
	{name: "PS256", kind: kindRSA, rsaBits: 2048},
	{name: "ES256", kind: kindEC, curve: "P-256"},
	{name: "ES384", kind: kindEC, curve: "P-384"},
	{name: "EdDSA", kind: kindEd25519},
	{name: "HS256", kind: kindHMAC, secret: 32},
	{name: "HS384", kind: kindHMAC, secret: 48},
	{name: "HS512", kind: kindHMAC, secret: 64},
}

// Algorithms returns the names of the supported JWS algorithms.
func Algorithms() []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.name
	}
	return out
}

// MinSecretLen returns the minimum secret length in bytes for an HMAC
// algorithm (32, 48 or 64 for HS256, HS384 or HS512) and 0 for any other
// algorithm.
func MinSecretLen(alg string) int {
	s, ok := lookupSpec(alg)
	if !ok {
		return 0
	}
	return s.secret
}

// lookupSpec finds the spec of a supported algorithm by its exact name.
func lookupSpec(alg string) (algSpec, bool) {
	for _, s := range specs {
		if s.name == alg {
			return s, true
		}
	}
	return algSpec{}, false
}

// resolveAlg returns the spec and the jwx algorithm for a supported name.
func resolveAlg(alg string) (algSpec, jwa.SignatureAlgorithm, error) {
	s, ok := lookupSpec(alg)
	if !ok {
		return algSpec{}, jwa.EmptySignatureAlgorithm(), fmt.Errorf("unsupported algorithm %q (supported: %s)", alg, strings.Join(Algorithms(), ", "))
	}
	ja, ok := jwa.LookupSignatureAlgorithm(s.name)
	if !ok {
		return algSpec{}, jwa.EmptySignatureAlgorithm(), fmt.Errorf("algorithm %q is not registered in jwx", alg)
	}
	return s, ja, nil
}
