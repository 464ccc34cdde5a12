package keys

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url without
// padding) of the public part of an asymmetric key. It is the key ID that
// Generate and Mint use when none is given.
func Thumbprint(key any) (string, error) {
	pub, err := jwk.PublicKeyOf(key)
	if err != nil {
		return "", fmt.Errorf("deriving public JWK: %w", err)
	}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("computing JWK thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// publicJWKS returns the JSON of a JWK Set holding only the public part of
// priv, labelled with kid, alg and use "sig".
func publicJWKS(priv any, kid string, alg jwa.SignatureAlgorithm) ([]byte, error) {
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		return nil, fmt.Errorf("deriving public JWK: %w", err)
	}
	for name, v := range map[string]any{
		jwk.KeyIDKey:     kid,
		jwk.AlgorithmKey: alg,
		jwk.KeyUsageKey:  jwk.ForSignature,
	} {
		if err := pub.Set(name, v); err != nil {
			return nil, fmt.Errorf("setting JWK %q: %w", name, err)
		}
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return nil, fmt.Errorf("building JWKS: %w", err)
	}
	b, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding JWKS: %w", err)
	}
	return append(b, '\n'), nil
}
