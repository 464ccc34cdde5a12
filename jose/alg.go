// Package jose names the JWS algorithms tokengate supports, once: the
// configuration's allow-list, the verifier and the key tools all read this
// table. It holds no cryptography (jwx does that) and imports nothing but
// the standard library.
package jose

import "strings"

// Alg is a JWS "alg" value (RFC 7518 section 3.1), for example RS256.
type Alg string

// String returns the algorithm's name.
func (a Alg) String() string { return string(a) }

// The supported algorithms.
const (
	RS256 Alg = "RS256"
	RS384 Alg = "RS384"
	RS512 Alg = "RS512"
	PS256 Alg = "PS256"
	PS384 Alg = "PS384"
	PS512 Alg = "PS512"
	ES256 Alg = "ES256"
	ES384 Alg = "ES384"
	ES512 Alg = "ES512"
	EdDSA Alg = "EdDSA"
	HS256 Alg = "HS256"
	HS384 Alg = "HS384"
	HS512 Alg = "HS512"
)

// Family is the kind of key an algorithm signs with.
type Family int

// The key families.
const (
	RSA  Family = iota + 1 // RSA keys (RS*, PS*)
	EC                     // ECDSA keys on a NIST curve (ES*)
	OKP                    // Ed25519 keys (EdDSA)
	HMAC                   // a shared secret (HS*)
)

// Spec describes one supported algorithm.
type Spec struct {
	Alg    Alg
	Family Family
	// Curve is the curve an EC algorithm's key must be on ("P-256").
	Curve string
	// MinSecret is the shortest HMAC secret accepted, in bytes: the size of
	// the hash output (RFC 7518 section 3.2). Zero for other families.
	MinSecret int
	// Generate reports whether "keys generate" and "token mint" make and
	// use keys for this algorithm.
	Generate bool
	// RSABits is the modulus size "keys generate" uses for an RSA algorithm.
	RSABits int
}

// specs lists the supported algorithms in the order Supported reports them.
var specs = []Spec{
	{Alg: RS256, Family: RSA, Generate: true, RSABits: 2048},
	{Alg: RS384, Family: RSA, Generate: true, RSABits: 3072},
	{Alg: RS512, Family: RSA, Generate: true, RSABits: 4096},
	{Alg: PS256, Family: RSA, Generate: true, RSABits: 2048},
	{Alg: PS384, Family: RSA},
	{Alg: PS512, Family: RSA},
	{Alg: ES256, Family: EC, Curve: "P-256", Generate: true},
	{Alg: ES384, Family: EC, Curve: "P-384", Generate: true},
	{Alg: ES512, Family: EC, Curve: "P-521"},
	{Alg: EdDSA, Family: OKP, Generate: true},
	{Alg: HS256, Family: HMAC, MinSecret: 32, Generate: true},
	{Alg: HS384, Family: HMAC, MinSecret: 48, Generate: true},
	{Alg: HS512, Family: HMAC, MinSecret: 64, Generate: true},
}

var byName = func() map[string]Spec {
	m := make(map[string]Spec, len(specs))
	for _, s := range specs {
		m[string(s.Alg)] = s
	}
	return m
}()

// Lookup returns the spec of a supported algorithm by its exact,
// case-sensitive name ("none" is never supported).
func Lookup(name string) (Spec, bool) {
	s, ok := byName[name]
	return s, ok
}

// Supported returns every supported algorithm, RSA first and HMAC last.
func Supported() []Alg {
	out := make([]Alg, len(specs))
	for i, s := range specs {
		out[i] = s.Alg
	}
	return out
}

// Generated returns the algorithms "keys generate" and "token mint"
// support, in the order of Supported.
func Generated() []Alg {
	var out []Alg
	for _, s := range specs {
		if s.Generate {
			out = append(out, s.Alg)
		}
	}
	return out
}

// OfFamily returns the supported algorithms that sign with a key of family
// f (for EC, a key on curve), in the order of Supported.
func OfFamily(f Family, curve string) []Alg {
	var out []Alg
	for _, s := range specs {
		if s.Family == f && (f != EC || s.Curve == curve) {
			out = append(out, s.Alg)
		}
	}
	return out
}

// Join writes algs separated by sep ("RS256 RS384").
func Join(algs []Alg, sep string) string {
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = string(a)
	}
	return strings.Join(names, sep)
}
