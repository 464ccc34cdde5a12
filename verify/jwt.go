package verify

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/tokengate/tokengate/jose"
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

// JWTOptions configures a JWT verifier.
type JWTOptions struct {
	Name   string
	Issuer string
	// Issuers, instead of Issuer, are several exact "iss" values sharing
	// one key set (contract section 13); keys are discovered from the first
	// one that is a discoverable URL.
	Issuers   []string
	Audiences []string
	// Algorithms is the allow-list; empty means the algorithms of the keys.
	Algorithms []jose.Alg
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

	// Keys is where the keys come from (required).
	Keys KeySource
	// Remote tunes a remote or discovered JWKS.
	Remote RemoteOptions
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

// NewJWT builds a JWT verifier. Its errors are *OptionError, naming the
// offending option's configuration key (for example "algorithms").
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
		a, ok := signatureAlg(string(name))
		if !ok {
			return nil, optionErr("algorithms", "%q is not a supported signature algorithm", name)
		}
		v.allow = append(v.allow, a)
	}
	src := o.Keys
	switch src.kind {
	case sourceRemote, sourceDiscover:
		for _, a := range v.allow {
			if isHMAC(a) {
				return nil, optionErr("algorithms", "%s needs an HMAC secret, not a JWKS", a)
			}
		}
		r, err := newRemoteKeys(o.Name, src.uri, discoveryIssuer, v.allow, o.Remote)
		if err != nil {
			return nil, &OptionError{Key: src.Key(), Err: err}
		}
		v.keys = r
	case sourceJWKS:
		keys, _, err := keysFromJWKS(src.data, v.allow)
		if err != nil {
			return nil, &OptionError{Key: src.Key(), Err: err}
		}
		if len(keys) == 0 {
			return nil, optionErr(src.Key(), "no usable signature key (check algorithms)")
		}
		v.keys = staticKeys{newKeySet(keys)}
	case sourcePEM:
		keys, err := keysFromPEM(src.data, v.allow)
		if err != nil {
			return nil, &OptionError{Key: src.Key(), Err: err}
		}
		v.keys = staticKeys{newKeySet(keys)}
	case sourceSecret:
		if len(v.allow) == 0 {
			v.allow = []jwa.SignatureAlgorithm{jwa.HS256()}
		}
		for _, a := range v.allow {
			if !isHMAC(a) {
				return nil, optionErr("algorithms", "%s cannot be used with an HMAC secret", a)
			}
			if n := minSecret(a); len(src.data) < n {
				return nil, optionErr(src.Key(), "%d bytes is too short for %s (minimum %d)", len(src.data), a, n)
			}
		}
		key := &verificationKey{key: slices.Clone(src.data), algs: v.allow}
		v.keys = staticKeys{newKeySet([]*verificationKey{key})}
		v.hmac = true
	default:
		return nil, optionErr(src.Key(), "a key source is required: a JWKS URL, a JWKS, a public key or an HMAC secret")
	}
	return v, nil
}

// signatureAlg returns jwx's algorithm for a name in tokengate's list.
func signatureAlg(name string) (jwa.SignatureAlgorithm, bool) {
	if _, ok := jose.Lookup(name); !ok {
		return jwa.EmptySignatureAlgorithm(), false
	}
	return jwa.LookupSignatureAlgorithm(name)
}

func isHMAC(a jwa.SignatureAlgorithm) bool {
	s, _ := jose.Lookup(a.String())
	return s.Family == jose.HMAC
}

// minSecret is the shortest secret accepted for an HMAC algorithm.
func minSecret(a jwa.SignatureAlgorithm) int {
	s, _ := jose.Lookup(a.String())
	return s.MinSecret
}

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
	spec, known := jose.Lookup(t.Alg)
	alg, ok := jwa.LookupSignatureAlgorithm(t.Alg)
	if !known || !ok || (v.allow != nil && !slices.Contains(v.allow, alg)) {
		return nil, fmt.Errorf("%w: %q", ErrAlgorithmNotAllowed, truncate(t.Alg))
	}
	if (spec.Family == jose.HMAC) != v.hmac {
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
