package keys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// pemPrefix marks a file as PEM rather than a secret.
var pemPrefix = []byte("-----BEGIN")

// LoadPrivateKey reads a signing key from path.
//
// A PEM file may hold a PKCS#8 ("PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY")
// or SEC1 ("EC PRIVATE KEY") key; the result is *rsa.PrivateKey,
// *ecdsa.PrivateKey or ed25519.PrivateKey. Any other file is treated as an
// HMAC secret, decoded with DecodeSecret and returned as []byte.
// Errors name the file but never include its contents.
func LoadPrivateKey(path string) (any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading key file %s: %w", path, err)
	}
	if !bytes.HasPrefix(bytes.TrimSpace(data), pemPrefix) {
		secret, err := DecodeSecret(string(data))
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", path, err)
		}
		return secret, nil
	}
	key, err := parsePEMPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return key, nil
}

// parsePEMPrivateKey returns the first private key found in PEM data,
// skipping "EC PARAMETERS" blocks as written by openssl.
func parsePEMPrivateKey(data []byte) (any, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("no PEM private key found")
		}
		switch block.Type {
		case "EC PARAMETERS":
			continue
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parsing PKCS#8 private key: %w", err)
			}
			return checkSigningKey(k)
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parsing PKCS#1 RSA private key: %w", err)
			}
			return k, nil
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parsing SEC1 EC private key: %w", err)
			}
			return k, nil
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("encrypted private keys are not supported")
		case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
			return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
		default:
			return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
		}
	}
}

// checkSigningKey accepts the PKCS#8 key types that can sign JWS.
func checkSigningKey(k any) (any, error) {
	switch k.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported private key type %T", k)
}
