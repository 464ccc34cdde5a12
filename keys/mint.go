package keys

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/tokengate/tokengate/jose"
)

// DefaultTTL is the token lifetime Mint uses when MintOptions.TTL is zero.
const DefaultTTL = time.Hour

// MintOptions configures Mint.
type MintOptions struct {
	// KeyFile is the signing key, read with LoadPrivateKey. Required.
	KeyFile string
	// Alg is the JWS algorithm, one of Algorithms(). Required.
	Alg string
	// Kid is the "kid" header. If empty and the key is asymmetric, the
	// key's thumbprint is used, matching Generate's default.
	Kid string
	// Issuer is the "iss" claim. Required.
	Issuer string
	// Audience is the "aud" claim: a string for one entry, an array
	// otherwise. At least one entry is required.
	Audience []string
	// Subject is the "sub" claim. Required.
	Subject string
	// Scope is the space-separated "scope" claim, omitted when empty.
	Scope string
	// TTL is the lifetime; "exp" is Now+TTL. Zero means DefaultTTL.
	TTL time.Duration
	// Claims are extra claims. They may not set iss, sub, aud, exp or iat,
	// nor scope when Scope is set.
	Claims map[string]any
	// Now is the issue time ("iat"). Zero means time.Now().
	Now time.Time
	// Type is the "typ" header: "JWT" (the default) or "at+jwt".
	Type string
	// CnfJKT binds the token to a DPoP key: the "cnf" claim gets "jkt",
	// the key's RFC 7638 thumbprint (see KeyThumbprintFile).
	CnfJKT string
	// CnfX5T binds the token to a client certificate: the "cnf" claim gets
	// "x5t#S256" (see CertificateThumbprintFile).
	CnfX5T string
}

// Mint loads o.KeyFile, builds a JWT from o and returns it signed in JWS
// compact serialization. The key must fit o.Alg; HMAC secrets must be at
// least MinSecretLen(o.Alg) bytes.
func Mint(o MintOptions) (string, error) {
	spec, alg, err := resolveAlg(o.Alg)
	if err != nil {
		return "", err
	}
	typ, err := headerType(o.Type)
	if err != nil {
		return "", err
	}
	if o.KeyFile == "" {
		return "", errors.New("key file is required")
	}
	key, err := LoadPrivateKey(o.KeyFile)
	if err != nil {
		return "", err
	}
	if err := checkKeyFits(spec, key); err != nil {
		return "", fmt.Errorf("key file %s: %w", o.KeyFile, err)
	}
	kid := o.Kid
	if kid == "" && spec.Family != jose.HMAC {
		if kid, err = Thumbprint(key); err != nil {
			return "", err
		}
	}
	tok, err := buildToken(o)
	if err != nil {
		return "", err
	}
	hdr := jws.NewHeaders()
	if kid != "" {
		if err := hdr.Set(jws.KeyIDKey, kid); err != nil {
			return "", fmt.Errorf("setting kid header: %w", err)
		}
	}
	if err := hdr.Set(jws.TypeKey, typ); err != nil {
		return "", fmt.Errorf("setting typ header: %w", err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(alg, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("signing token with %s: %w", o.Alg, err)
	}
	return string(signed), nil
}

// headerType validates and normalizes the "typ" header value.
func headerType(t string) (string, error) {
	switch {
	case t == "" || strings.EqualFold(t, "JWT"):
		return "JWT", nil
	case strings.EqualFold(t, "at+jwt"):
		return "at+jwt", nil
	}
	return "", fmt.Errorf("unsupported token type %q (use JWT or at+jwt)", t)
}
