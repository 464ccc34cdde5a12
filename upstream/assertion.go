package upstream

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/tokengate/tokengate/verify"
)

// Request is one allowed request, as its upstream credential needs it.
type Request struct {
	// Token is the client's raw bearer token. It is hashed for the caches
	// and sent nowhere but to the token endpoint (mode exchange), or back
	// to the upstream in mode forward.
	Token string
	// Identity is what verification returned for Token; when nil, Verified
	// gives it, built only when an assertion has to be signed.
	Identity *verify.Identity
	// Verified is the verification result of Token (optional).
	Verified verify.Result
	// Expiry is the client token's exp. Zero means: read "exp" from
	// Identity.Payload; when that has none either (static tokens), only
	// the route's ttl bounds the assertion.
	Expiry time.Time
}

// expiry returns the client token's exp, or zero when unknown.
func (r Request) expiry() time.Time {
	if !r.Expiry.IsZero() {
		return r.Expiry
	}
	if r.Identity == nil {
		return time.Time{}
	}
	return PayloadExpiry(r.Identity.Payload)
}

// PayloadExpiry returns the "exp" of a verified JSON claims object (a JWT
// payload or an introspection answer), or zero when it has none.
func PayloadExpiry(payload []byte) time.Time {
	if len(payload) == 0 || !bytes.Contains(payload, []byte(`"exp"`)) {
		return time.Time{}
	}
	var c struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &c) != nil || c.Exp == "" {
		return time.Time{}
	}
	f, err := c.Exp.Float64()
	if err != nil || f <= 0 || f > 1<<40 {
		return time.Time{}
	}
	return time.Unix(int64(f), 0)
}

// Claims are the claims of one upstream assertion.
type Claims struct {
	Issuer   string `json:"iss"`
	Audience string `json:"aud"`
	Subject  string `json:"sub,omitempty"`
	Scope    string `json:"scope,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	JTI      string `json:"jti"`
	Route    string `json:"tg_route"`
}

// Sign signs one assertion for id, addressed to audience, on behalf of the
// route named route. Its exp is now+ttl, but never beyond clientExp (when
// not zero); a client token that has expired already gives an error
// wrapping verify.ErrTokenExpired. It returns the compact JWS and its exp.
// Sign does not cache; see Asserter.
func (s *Signer) Sign(route, audience string, ttl time.Duration, id *verify.Identity, clientExp time.Time) (string, time.Time, error) {
	now := s.now()
	iat := now.Unix()
	exp := now.Add(ttl).Unix()
	if !clientExp.IsZero() && clientExp.Unix() < exp {
		exp = clientExp.Unix()
	}
	if exp <= iat {
		return "", time.Time{}, fmt.Errorf("%w: the client token expires before an assertion could be used", verify.ErrTokenExpired)
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("%w: jti: %v", ErrAssertionUnavailable, err)
	}
	c := Claims{
		Issuer: s.issuer, Audience: audience, IssuedAt: iat, Expiry: exp,
		JTI: base64.RawURLEncoding.EncodeToString(jti[:]), Route: route,
	}
	if id != nil {
		c.Subject, c.ClientID = id.Subject, id.ClientID
		c.Scope = strings.Join(id.Scopes, " ")
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%w: %v", ErrAssertionUnavailable, err)
	}
	k := s.signing
	signed, err := jws.Sign(payload, jws.WithKey(k.alg, k.priv, jws.WithProtectedHeaders(k.hdr)))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%w: %v", ErrAssertionUnavailable, err)
	}
	k.noteExp(exp)
	return string(signed), time.Unix(exp, 0), nil
}

// cachedAssertion is a ready Authorization value and when to re-mint it.
type cachedAssertion struct {
	header string
}

// Asserter mints the assertions of one route. It is cheap; build one per
// route and configuration.
type Asserter struct {
	signer   *Signer
	route    string
	audience string
	ttl      time.Duration
	sub      string // cache key part: route and audience
}

// Asserter returns the minting side of s for one route.
func (s *Signer) Asserter(route, audience string, ttl time.Duration) *Asserter {
	return &Asserter{signer: s, route: route, audience: audience, ttl: ttl, sub: route + "\x00" + audience}
}

// refreshAt is when a cached assertion minted at iat and expiring at exp is
// re-minted: after four fifths of its lifetime, or at exp when the client
// token's exp cut it short (a new one could not last longer).
func refreshAt(iat, exp time.Time, ttl time.Duration, capped bool) time.Time {
	if capped {
		return exp
	}
	return iat.Add(ttl - ttl/5)
}

// Authorization returns "Bearer <assertion>" for req, from the cache (per
// token hash, route and audience) while the cached assertion is fresh, else
// newly signed.
func (a *Asserter) Authorization(h TokenHash, req Request) (string, error) {
	s := a.signer
	key := cacheKey{token: h, sub: a.sub}
	now := s.now()
	if c, ok := s.cache.get(key, now); ok {
		return c.header, nil
	}
	if req.Identity == nil {
		req.Identity = req.Verified.Identity() // nil for a zero Result
	}
	clientExp := req.expiry()
	jwt, exp, err := s.Sign(a.route, a.audience, a.ttl, req.Identity, clientExp)
	if err != nil {
		return "", err
	}
	header := "Bearer " + jwt
	capped := exp.Unix() < now.Add(a.ttl).Unix()
	s.cache.put(key, cachedAssertion{header: header}, refreshAt(now, exp, a.ttl, capped), now)
	return header, nil
}
