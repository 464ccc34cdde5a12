package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"

	"github.com/tokengate/tokengate/jose"
)

// minRSABits is the smallest RSA modulus accepted for signing.
const minRSABits = 2048

// checkKeyFits reports whether key can sign with the algorithm in spec.
// Messages describe the key type, never key material.
func checkKeyFits(spec jose.Spec, key any) error {
	switch spec.Family {
	case jose.RSA:
		k, ok := key.(*rsa.PrivateKey)
		if !ok {
			return mismatch(spec, "an RSA private key", key)
		}
		if n := k.N.BitLen(); n < minRSABits {
			return fmt.Errorf("algorithm %s: RSA key has %d bits, need at least %d", spec.Alg, n, minRSABits)
		}
	case jose.EC:
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return mismatch(spec, "an ECDSA "+spec.Curve+" private key", key)
		}
		if got := k.Curve.Params().Name; got != spec.Curve {
			return fmt.Errorf("algorithm %s needs an ECDSA %s key, got curve %s", spec.Alg, spec.Curve, got)
		}
	case jose.OKP:
		if _, ok := key.(ed25519.PrivateKey); !ok {
			return mismatch(spec, "an Ed25519 private key", key)
		}
	case jose.HMAC:
		k, ok := key.([]byte)
		if !ok {
			return mismatch(spec, "a secret", key)
		}
		if len(k) < spec.MinSecret {
			return fmt.Errorf("algorithm %s needs a secret of at least %d bytes, got %d", spec.Alg, spec.MinSecret, len(k))
		}
	default:
		return fmt.Errorf("algorithm %s: unknown key family", spec.Alg)
	}
	return nil
}

// mismatch builds the error for a key of the wrong family.
func mismatch(spec jose.Spec, want string, key any) error {
	return fmt.Errorf("algorithm %s needs %s, got %s", spec.Alg, want, describeKey(key))
}

// describeKey names the family of a loaded key for error messages.
func describeKey(key any) string {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return "an RSA private key"
	case *ecdsa.PrivateKey:
		return "an ECDSA " + k.Curve.Params().Name + " private key"
	case ed25519.PrivateKey:
		return "an Ed25519 private key"
	case []byte:
		return "a secret"
	}
	return fmt.Sprintf("a key of type %T", key)
}
