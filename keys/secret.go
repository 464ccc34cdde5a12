package keys

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
)

// secretPrefix marks a secret value that is base64 encoded.
const secretPrefix = "base64:"

// DecodeSecret decodes an HMAC secret as stored in a secret file or passed
// in configuration. Surrounding whitespace is trimmed. A value starting with
// "base64:" is decoded as standard base64 (URL-safe and unpadded forms are
// accepted too); any other value is used as raw bytes. Error messages never
// contain the secret.
func DecodeSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("secret is empty")
	}
	enc, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return []byte(s), nil
	}
	if enc == "" {
		return nil, errors.New("secret has a \"base64:\" prefix but no data")
	}
	for _, e := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding,
		base64.URLEncoding, base64.RawURLEncoding,
	} {
		if b, err := e.DecodeString(enc); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("secret has a \"base64:\" prefix but is not valid base64")
}

// newSecretFile returns fresh random bytes of length n encoded the way
// DecodeSecret reads them, with a trailing newline.
func newSecretFile(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return []byte(secretPrefix + base64.StdEncoding.EncodeToString(b) + "\n"), nil
}
