package keys

import (
	"github.com/tokengate/tokengate/jose"

	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// DPoPProofType is the typ header of a DPoP proof (RFC 9449 section 4.2).
const DPoPProofType = "dpop+jwt"

// MintDPoPProof returns a DPoP proof (RFC 9449 section 4.2) signed by priv
// with alg, carrying priv's public key as the jwk header. htm and htu are
// the request method and URI (without query and fragment). accessToken ""
// leaves out ath (a proof for a token request); nonce "" leaves out nonce;
// a zero iat means now; jti "" means 16 random bytes, base64url.
func MintDPoPProof(priv any, alg, htm, htu, accessToken, nonce string, iat time.Time, jti string) (string, error) {
	spec, jalg, err := resolveAlg(alg)
	if err != nil {
		return "", err
	}
	if spec.Family == jose.HMAC {
		return "", fmt.Errorf("algorithm %s cannot sign a DPoP proof: it needs an asymmetric key", alg)
	}
	if err := checkKeyFits(spec, priv); err != nil {
		return "", err
	}
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		return "", fmt.Errorf("deriving public JWK: %w", err)
	}
	if iat.IsZero() {
		iat = time.Now()
	}
	if jti == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("generating jti: %w", err)
		}
		jti = base64.RawURLEncoding.EncodeToString(b[:])
	}
	claims := map[string]any{"jti": jti, "htm": htm, "htu": htu, "iat": iat.Unix()}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encoding DPoP claims: %w", err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, DPoPProofType); err != nil {
		return "", fmt.Errorf("setting typ header: %w", err)
	}
	if err := hdr.Set(jws.JWKKey, pub); err != nil {
		return "", fmt.Errorf("setting jwk header: %w", err)
	}
	signed, err := jws.Sign(payload, jws.WithKey(jalg, priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("signing DPoP proof with %s: %w", alg, err)
	}
	return string(signed), nil
}

// KeyThumbprintFile returns the RFC 7638 thumbprint (the cnf.jkt) of the
// public part of the key in path: a PEM private key as LoadPrivateKey reads
// it, or a PEM "PUBLIC KEY".
func KeyThumbprintFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading key file %s: %w", path, err)
	}
	if block, _ := pem.Decode(data); block != nil && block.Type == "PUBLIC KEY" {
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return "", fmt.Errorf("key file %s: parsing public key: %w", path, err)
		}
		return Thumbprint(pub)
	}
	key, err := LoadPrivateKey(path)
	if err != nil {
		return "", err
	}
	if _, secret := key.([]byte); secret {
		return "", fmt.Errorf("key file %s: a DPoP key must be asymmetric, not a secret", path)
	}
	return Thumbprint(key)
}

// CertificateThumbprintFile returns the RFC 8705 x5t#S256 confirmation of
// the first certificate in path (PEM or DER): base64url(SHA-256(DER)).
func CertificateThumbprintFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading certificate file %s: %w", path, err)
	}
	der := data
	if bytes.HasPrefix(bytes.TrimSpace(data), pemPrefix) {
		der = nil
		for rest := data; ; {
			var block *pem.Block
			if block, rest = pem.Decode(rest); block == nil {
				break
			}
			if block.Type == "CERTIFICATE" {
				der = block.Bytes
				break
			}
		}
		if der == nil {
			return "", fmt.Errorf("certificate file %s: no PEM CERTIFICATE block", path)
		}
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return "", fmt.Errorf("certificate file %s: %w", path, err)
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}
