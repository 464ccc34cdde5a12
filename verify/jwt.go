package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// keySource supplies verification keys: a fixed set or a remote JWKS.
type keySource interface {
	// current returns the keys in use, or nil if none were ever loaded.
	current() *keySet
	// refetch asks for fresher keys after an unknown kid. It may answer with
	// the current set without fetching (rate limit); it fails when the keys
	// cannot be brought up to date (the fetch failed, or, within the rate
	// limit, the last one did).
	refetch(ctx context.Context) (*keySet, error)
	ready() bool
	start(ctx context.Context)
}

// JWTOptions configures a JWT verifier. Exactly one key source must be set:
// JWKSURI, JWKS, PublicKeyPEM or HMACSecret.
type JWTOptions struct {
	Name   string
	Issuer string
	// Issuers, instead of Issuer, are several exact "iss" values sharing
	// one key set (contract section 13); keys are discovered from the first
	// one that is a discoverable URL.
	Issuers   []string
	Audiences []string
	// Algorithms is the allow-list; empty means the algorithms of the keys.
	Algorithms []string
	// ScopeClaim names the claim holding scopes; empty means "scope"
	// falling back to "scp".
	ScopeClaim string
	ClockSkew  time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ScopeClaims, AudienceClaim and RequiredClaims adapt the verifier to
	// an identity provider's token shape (contract section 13).
	ScopeClaims    []string
	AudienceClaim  string
	RequiredClaims map[string][]string

	// Remote JWKS.
	JWKSURI string
	// Discover finds the JWKS URL in the issuer's OpenID Connect or RFC 8414
	// metadata instead (the issuer must then be an https URL).
	Discover bool
	Remote   RemoteOptions
	// JWKS is a local JWKS document.
	JWKS []byte
	// PublicKeyPEM holds one or more PEM public keys or certificates.
	PublicKeyPEM []byte
	// HMACSecret is the shared secret's bytes.
	HMACSecret []byte
}

// JWT verifies JWS-signed JWT access tokens.
type JWT struct {
	name   string
	issuer string
	// issuers are every accepted "iss" (issuers[0] == issuer).
	issuers    []string
	shape      *shape // nil: the default claims
	audiences  []string
	allow      []jwa.SignatureAlgorithm // nil: whatever the keys allow
	scopeClaim string
	skew       time.Duration
	now        func() time.Time
	keys       keySource
	// hmac reports whether the key source is a shared secret: then only HS*
	// tokens can verify, otherwise never.
	hmac bool
}

// hmacMinLen is the shortest secret accepted per HMAC algorithm (RFC 7518
// section 3.2: a key of the same size as the hash output or larger).
var hmacMinLen = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}

// NewJWT builds a JWT verifier. Its errors start with the name of the
// offending option's configuration key (for example "algorithms: ...").
func NewJWT(o JWTOptions) (*JWT, error) {
	v := &JWT{
		name:       o.Name,
		issuer:     o.Issuer,
		audiences:  o.Audiences,
		scopeClaim: o.ScopeClaim,
		skew:       o.ClockSkew,
		now:        o.Now,
	}
	if v.now == nil {
		v.now = time.Now
	}
	discoveryIssuer, err := v.setShape(o)
	if err != nil {
		return nil, err
	}
	if v.scopeClaim == "scope" {
		v.scopeClaim = ""
	}
	for _, name := range o.Algorithms {
		a, ok := jwa.LookupSignatureAlgorithm(name)
		if !ok || a == jwa.NoSignature() || !supportedAlg(a) {
			return nil, fmt.Errorf("algorithms: %q is not a supported signature algorithm", name)
		}
		v.allow = append(v.allow, a)
	}
	sources := 0
	for _, set := range []bool{o.JWKSURI != "" || o.Discover, o.JWKS != nil, o.PublicKeyPEM != nil, o.HMACSecret != nil} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return nil, errors.New("jwks_uri: exactly one of jwks_uri, jwks_file, public_key, public_key_file or an hmac_secret is required")
	}
	switch {
	case o.JWKSURI != "" || o.Discover:
		for _, a := range v.allow {
			if isHMAC(a) {
				return nil, fmt.Errorf("algorithms: %s needs an HMAC secret, not a JWKS", a)
			}
		}
		r, err := newRemoteKeys(o.Name, o.JWKSURI, discoveryIssuer, v.allow, o.Remote)
		if err != nil {
			if o.JWKSURI == "" {
				return nil, fmt.Errorf("issuer: %w", err)
			}
			return nil, fmt.Errorf("jwks_uri: %w", err)
		}
		v.keys = r
	case o.JWKS != nil:
		keys, _, err := keysFromJWKS(o.JWKS, v.allow)
		if err != nil {
			return nil, fmt.Errorf("jwks_file: %w", err)
		}
		if len(keys) == 0 {
			return nil, errors.New("jwks_file: no usable signature key (check algorithms)")
		}
		v.keys = staticKeys{newKeySet(keys)}
	case o.PublicKeyPEM != nil:
		keys, err := keysFromPEM(o.PublicKeyPEM, v.allow)
		if err != nil {
			return nil, fmt.Errorf("public_key: %w", err)
		}
		v.keys = staticKeys{newKeySet(keys)}
	default:
		if len(v.allow) == 0 {
			v.allow = []jwa.SignatureAlgorithm{jwa.HS256()}
		}
		for _, a := range v.allow {
			if !isHMAC(a) {
				return nil, fmt.Errorf("algorithms: %s cannot be used with an HMAC secret", a)
			}
			if n := hmacMinLen[a.String()]; len(o.HMACSecret) < n {
				return nil, fmt.Errorf("hmac_secret: %d bytes is too short for %s (minimum %d)", len(o.HMACSecret), a, n)
			}
		}
		key := &verificationKey{key: slices.Clone(o.HMACSecret), algs: v.allow}
		v.keys = staticKeys{newKeySet([]*verificationKey{key})}
		v.hmac = true
	}
	return v, nil
}

func supportedAlg(a jwa.SignatureAlgorithm) bool {
	switch a.String() {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512":
		return true
	}
	return false
}

func isHMAC(a jwa.SignatureAlgorithm) bool { return strings.HasPrefix(a.String(), "HS") }

// Name implements Verifier.
func (v *JWT) Name() string { return v.name }

// Kind implements Verifier.
func (v *JWT) Kind() Kind { return KindJWT }

// Issuer implements Verifier.
func (v *JWT) Issuer() string { return v.issuer }

// Ready implements Verifier.
func (v *JWT) Ready() bool { return v.keys.ready() }

// Start implements Verifier.
func (v *JWT) Start(ctx context.Context) { v.keys.start(ctx) }

// keysVersion identifies one set of verification keys. Two versions are
// equal only if they name the same set; every JWKS fetch makes a new one.
type keysVersion struct{ set *keySet }

// keysVersion returns the version of the keys in use (the zero version
// before any are loaded). The token cache compares it later to notice that
// the keys were replaced, possibly dropping the key that signed the token.
func (v *JWT) keysVersion() keysVersion { return keysVersion{v.keys.current()} }

// checkAudience applies Verify's audience rule to the "aud" of a token
// this verifier accepted: aud must hold one of the verifier's own audiences
// or, when it has none, one of audiences. It returns nil or an error
// wrapping ErrAudienceMismatch.
func (v *JWT) checkAudience(aud, audiences []string) error {
	if len(v.audiences) > 0 {
		audiences = v.audiences
	}
	if len(audiences) == 0 {
		// Configuration validation prevents this; fail closed anyway.
		return errNoAudience
	}
	for _, a := range aud {
		if slices.Contains(audiences, a) {
			return nil
		}
	}
	return ErrAudienceMismatch
}

var errNoAudience = fmt.Errorf("%w: no expected audience configured", ErrAudienceMismatch)

// Verify implements Verifier. Cheap checks (algorithm, header, claims) run
// before any key work, so garbage never costs a JWKS refetch.
func (v *JWT) Verify(ctx context.Context, t *Token, audiences []string) (*Identity, error) {
	if err := t.Malformed(); err != nil {
		return nil, err
	}
	alg, ok := jwa.LookupSignatureAlgorithm(t.Alg)
	if !ok || !supportedAlg(alg) || (v.allow != nil && !slices.Contains(v.allow, alg)) {
		return nil, fmt.Errorf("%w: %q", ErrAlgorithmNotAllowed, truncate(t.Alg))
	}
	if isHMAC(alg) != v.hmac {
		// HMAC with a public key (or a public-key algorithm with a shared
		// secret) never verifies; say so before any key lookup or refetch.
		return nil, fmt.Errorf("%w: %s does not fit this verifier's keys", ErrAlgorithmNotAllowed, alg)
	}
	if t.Crit {
		return nil, fmt.Errorf("%w: unsupported critical header", ErrTokenMalformed)
	}
	if !accessTokenType(t.Typ) {
		return nil, fmt.Errorf("%w: typ %q is not an access token type", ErrTokenMalformed, truncate(t.Typ))
	}
	if err := v.checkClaims(t.Claims, audiences); err != nil {
		return nil, err
	}
	payload, err := v.checkSignature(ctx, t, alg)
	if err != nil {
		return nil, err
	}
	var scopes []string
	if v.shape != nil {
		scopes, err = v.shape.check(v, t.Claims, payload, audiences)
	} else {
		scopes, err = v.scopes(t.Claims, payload)
	}
	if err != nil {
		return nil, err
	}
	return &Identity{
		Verifier: v.name,
		Subject:  t.Claims.Subject,
		Issuer:   t.Claims.Issuer,
		ClientID: t.Claims.clientID(),
		Scopes:   scopes,
		Payload:  payload,
	}, nil
}

// accessTokenType reports whether typ (compared case-insensitively, RFC 7515
// section 4.1.9) is absent, JWT or RFC 9068's at+jwt.
func accessTokenType(typ string) bool {
	for _, ok := range []string{"", "JWT", "at+jwt", "application/at+jwt"} {
		if strings.EqualFold(typ, ok) {
			return true
		}
	}
	return false
}

func (v *JWT) checkClaims(c *Claims, audiences []string) error {
	if c.Issuer != v.issuer && !v.AcceptsIssuer(c.Issuer) {
		return ErrIssuerUntrusted
	}
	now := v.now()
	if c.Expiry == nil {
		return fmt.Errorf("%w: exp claim is required", ErrTokenMalformed)
	}
	if !now.Before(c.Expiry.Add(v.skew)) {
		return ErrTokenExpired
	}
	if c.NotBefore != nil && now.Add(v.skew).Before(c.NotBefore.Time) {
		return ErrTokenNotYetValid
	}
	if c.IssuedAt != nil && now.Add(v.skew).Before(c.IssuedAt.Time) {
		return ErrIssuedInFuture
	}
	if v.shape != nil && v.shape.audClaim != "" {
		return nil // the audience claim is read from the verified payload
	}
	return v.checkAudience(c.Audience, audiences)
}

func (v *JWT) checkSignature(ctx context.Context, t *Token, alg jwa.SignatureAlgorithm) ([]byte, error) {
	ks := v.keys.current()
	fetched := false
	if ks == nil {
		var err error
		if ks, err = v.keys.refetch(ctx); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrJWKSUnavailable, err)
		}
		fetched = true
	}
	var buf [4]*verificationKey
	cands, known := ks.candidates(t.Kid, alg, buf[:0])
	if !known && fetched {
		return nil, ErrKeyUnknown
	}
	if !known {
		fresh, err := v.keys.refetch(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: unknown kid and %v", ErrJWKSUnavailable, err)
		}
		if cands, known = fresh.candidates(t.Kid, alg, buf[:0]); !known {
			return nil, ErrKeyUnknown
		}
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("%w: no trusted key for %s", ErrAlgorithmNotAllowed, alg)
	}
	raw := t.compact // the bytes ParseToken split, rather than a fresh copy
	if raw == nil {
		raw = []byte(t.Raw)
	}
	for _, k := range cands {
		if payload, err := jws.VerifyCompactFast(k.key, raw, alg); err == nil {
			return payload, nil
		}
	}
	return nil, ErrSignatureInvalid
}

func (v *JWT) scopes(c *Claims, payload []byte) ([]string, error) {
	if v.scopeClaim == "" {
		return c.scopes(), nil
	}
	return scopeFromClaim(payload, v.scopeClaim)
}

// truncate keeps attacker-chosen header values short in logs.
func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
