package verify

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tokengate/tokengate/jose"
)

// verificationKey is one key that can check signatures, with the
// algorithms it may be used with (already cut down to the verifier's
// allow-list).
type verificationKey struct {
	kid  string
	key  any // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte
	algs []jwa.SignatureAlgorithm
}

// keySet is an immutable set of verification keys. A new set replaces an old
// one whole, so readers never lock.
type keySet struct {
	byKid map[string][]*verificationKey
	noKid []*verificationKey // keys without a kid match any token kid
	all   []*verificationKey
}

func newKeySet(keys []*verificationKey) *keySet {
	ks := &keySet{byKid: make(map[string][]*verificationKey, len(keys)), all: keys}
	for _, k := range keys {
		if k.kid == "" {
			ks.noKid = append(ks.noKid, k)
			continue
		}
		ks.byKid[k.kid] = append(ks.byKid[k.kid], k)
	}
	return ks
}

// candidates returns the keys that may have signed a token with kid and
// alg, and whether the kid is known at all.
func (ks *keySet) candidates(kid string, alg jwa.SignatureAlgorithm, buf []*verificationKey) ([]*verificationKey, bool) {
	pool := ks.all
	known := true
	if kid != "" {
		byKid, ok := ks.byKid[kid]
		known = ok || len(ks.noKid) > 0
		pool = append(byKid[:len(byKid):len(byKid)], ks.noKid...)
	}
	out := buf[:0]
	for _, k := range pool {
		if slices.Contains(k.algs, alg) {
			out = append(out, k)
		}
	}
	return out, known
}

// algorithms returns the union of the keys' algorithms.
func (ks *keySet) algorithms() []jwa.SignatureAlgorithm {
	var out []jwa.SignatureAlgorithm
	for _, k := range ks.all {
		for _, a := range k.algs {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// algorithmsForKey lists the signature algorithms RFC 7518 allows for a
// public key of this type. HMAC algorithms are only ever allowed for []byte
// secrets, so a public key can never be used as an HMAC secret.
func algorithmsForKey(key any) ([]jwa.SignatureAlgorithm, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits is too short (minimum 2048)", k.N.BitLen())
		}
		return familyAlgs(jose.RSA, ""), nil
	case *ecdsa.PublicKey:
		if algs := familyAlgs(jose.EC, k.Curve.Params().Name); len(algs) > 0 {
			return algs, nil
		}
		return nil, errors.New("unsupported EC curve")
	case ed25519.PublicKey:
		return familyAlgs(jose.OKP, ""), nil
	case []byte:
		return familyAlgs(jose.HMAC, ""), nil
	}
	return nil, fmt.Errorf("unsupported key type %T", key)
}

// familyAlgs returns jwx's algorithms for jose.OfFamily(f, curve).
func familyAlgs(f jose.Family, curve string) []jwa.SignatureAlgorithm {
	var out []jwa.SignatureAlgorithm
	for _, name := range jose.OfFamily(f, curve) {
		if a, ok := jwa.LookupSignatureAlgorithm(string(name)); ok {
			out = append(out, a)
		}
	}
	return out
}

// restrict cuts the key's algorithms down to the allow-list (nil: no
// restriction) and, if the key names one, to its own "alg".
func restrict(algs []jwa.SignatureAlgorithm, keyAlg string, allow []jwa.SignatureAlgorithm) []jwa.SignatureAlgorithm {
	out := make([]jwa.SignatureAlgorithm, 0, len(algs))
	for _, a := range algs {
		if keyAlg != "" && a.String() != keyAlg {
			continue
		}
		if allow != nil && !slices.Contains(allow, a) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// keysFromJWKS parses a JWKS document. Keys that are not for signatures, of
// an unsupported type, or with no algorithm left after the allow-list are
// skipped; skipped reports how many.
func keysFromJWKS(doc []byte, allow []jwa.SignatureAlgorithm) (keys []*verificationKey, skipped int, err error) {
	set, err := jwk.Parse(doc)
	if err != nil {
		return nil, 0, fmt.Errorf("invalid JWKS: %w", err)
	}
	for i := range set.Len() {
		k, _ := set.Key(i)
		if use, ok := k.KeyUsage(); ok && use != "sig" {
			skipped++
			continue
		}
		var raw any
		if err := jwk.Export(k, &raw); err != nil {
			skipped++
			continue
		}
		raw = publicOnly(raw)
		algs, err := algorithmsForKey(raw)
		if err != nil {
			skipped++
			continue
		}
		if _, isSecret := raw.([]byte); isSecret {
			// A symmetric key in a published JWKS is a misconfiguration.
			skipped++
			continue
		}
		keyAlg := ""
		if a, ok := k.Algorithm(); ok {
			keyAlg = a.String()
		}
		algs = restrict(algs, keyAlg, allow)
		if len(algs) == 0 {
			skipped++
			continue
		}
		kid, _ := k.KeyID()
		keys = append(keys, &verificationKey{kid: kid, key: raw, algs: algs})
	}
	return keys, skipped, nil
}

// publicOnly returns the public half of a private key, so that a JWKS that
// wrongly carries private keys still works but never holds them longer.
func publicOnly(raw any) any {
	switch k := raw.(type) {
	case *rsa.PrivateKey:
		return &k.PublicKey
	case *ecdsa.PrivateKey:
		return &k.PublicKey
	case ed25519.PrivateKey:
		return k.Public()
	case rsa.PublicKey:
		return &k
	case ecdsa.PublicKey:
		return &k
	}
	return raw
}

// keysFromPEM parses one or more PEM blocks of public keys or certificates.
func keysFromPEM(data []byte, allow []jwa.SignatureAlgorithm) ([]*verificationKey, error) {
	var keys []*verificationKey
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var pub any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			cert, err = x509.ParseCertificate(block.Bytes)
			if err == nil {
				pub = cert.PublicKey
			}
		default:
			return nil, fmt.Errorf("PEM block %d: type %q is not a public key or certificate", n, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		algs, err := algorithmsForKey(pub)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		algs = restrict(algs, "", allow)
		if len(algs) == 0 {
			return nil, fmt.Errorf("PEM block %d: no allowed algorithm fits this key", n)
		}
		keys = append(keys, &verificationKey{key: pub, algs: algs})
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key found")
	}
	return keys, nil
}
