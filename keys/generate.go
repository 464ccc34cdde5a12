package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tokengate/tokengate/jose"
)

// File names written by Generate.
const (
	// PrivateKeyFile holds the PKCS#8 PEM private key (mode 0600).
	PrivateKeyFile = "private.pem"
	// PublicKeyFile holds the PKIX PEM public key (mode 0644).
	PublicKeyFile = "public.pem"
	// JWKSFile holds a JWK Set with the public key only (mode 0644).
	JWKSFile = "jwks.json"
	// SecretFile holds an HMAC secret as "base64:..." (mode 0600).
	SecretFile = "secret"
)

// Generate creates a new key for alg in dir and returns the paths written.
// dir is created with mode 0700 if missing.
//
// For asymmetric algorithms it writes PrivateKeyFile, PublicKeyFile and
// JWKSFile; the JWKS entry carries kid, alg and use "sig". An empty kid is
// replaced by the key's RFC 7638 thumbprint (see Thumbprint). For HS256,
// HS384 and HS512 it writes only SecretFile with MinSecretLen(alg) random
// bytes, and kid is not used.
//
// Generate never overwrites: if any target file exists it returns an error
// naming that file and writes nothing.
func Generate(alg, kid, dir string) (written []string, err error) {
	spec, jalg, err := resolveAlg(alg)
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, fmt.Errorf("output directory is required")
	}
	if spec.Family == jose.HMAC {
		data, err := newSecretFile(spec.MinSecret)
		if err != nil {
			return nil, fmt.Errorf("generating %s secret: %w", alg, err)
		}
		return writeIn(dir, []outFile{{path: SecretFile, data: data, perm: 0o600}})
	}

	priv, err := newPrivateKey(spec)
	if err != nil {
		return nil, fmt.Errorf("generating %s key: %w", alg, err)
	}
	if kid == "" {
		if kid, err = Thumbprint(priv); err != nil {
			return nil, err
		}
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	jwks, err := publicJWKS(priv, kid, jalg)
	if err != nil {
		return nil, err
	}
	return writeIn(dir, []outFile{
		{path: PrivateKeyFile, data: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), perm: 0o600},
		{path: PublicKeyFile, data: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), perm: 0o644},
		{path: JWKSFile, data: jwks, perm: 0o644},
	})
}

// newPrivateKey generates a private key of the family and size spec needs.
func newPrivateKey(spec jose.Spec) (crypto.Signer, error) {
	switch spec.Family {
	case jose.RSA:
		return rsa.GenerateKey(rand.Reader, spec.RSABits)
	case jose.EC:
		c, err := curveByName(spec.Curve)
		if err != nil {
			return nil, err
		}
		return ecdsa.GenerateKey(c, rand.Reader)
	case jose.OKP:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("algorithm %s has no asymmetric key", spec.Alg)
}

// curveByName maps a curve name used in specs to the stdlib curve.
func curveByName(name string) (elliptic.Curve, error) {
	switch name {
	case "P-256":
		return elliptic.P256(), nil
	case "P-384":
		return elliptic.P384(), nil
	}
	return nil, fmt.Errorf("unsupported curve %q", name)
}

// writeIn creates dir (0700) if needed and writes files named relative to it.
func writeIn(dir string, files []outFile) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating directory %s: %w", dir, err)
	}
	for i := range files {
		files[i].path = filepath.Join(dir, files[i].path)
	}
	return writeAll(files)
}
