package verify

import (
	"context"
	"strings"
	"time"
)

// Candidate is one verifier as a route offers it tokens: with the
// audiences it expects when the verifier has none of its own.
type Candidate struct {
	Verifier  Verifier
	Audiences []string
}

// Expect is what one request expects of its credential, beyond what the
// verifiers themselves check.
type Expect struct {
	// Scopes are the scopes the token must grant, all of them.
	Scopes []string
	// Broader maps a scope to the scopes that imply it (a scope
	// hierarchy): a token granting one of those has the scope too.
	Broader map[string][]string
	// Sender is what the request shows of its sender (DPoP proofs, client
	// certificate); nil means a plain bearer request.
	Sender *Sender
}

// Chain is the verification call of one route: the verifiers it accepts,
// in order, and the verified-token cache it shares with the other routes of
// its policy. Verify is the only way a credential becomes an identity.
type Chain struct {
	jwt   []Candidate // offered JWS-shaped tokens whose iss is theirs
	other []Candidate // offered every other token, in order
	cache *TokenCache
}

// NewChain returns the chain of cands. cache may be shared by many chains;
// nil means a disabled cache.
func NewChain(cands []Candidate, cache *TokenCache) *Chain {
	if cache == nil {
		cache = NewTokenCache(CacheOptions{})
	}
	c := &Chain{cache: cache}
	for _, cand := range cands {
		if cand.Verifier.Kind() == KindJWT {
			c.jwt = append(c.jwt, cand)
		} else {
			c.other = append(c.other, cand)
		}
	}
	return c
}

// Verify checks the raw credential against the chain and exp. It returns
// the identity, or one error wrapping one of this package's sentinels,
// chosen as the contract orders them when every verifier refused: a
// verifier that accepted the token but found scopes missing
// (ErrScopeInsufficient), else one that could not decide (an unavailable
// error), else the first refusal. The Result of a failure names the
// verifier the error came from, where one did.
//
// Dispatch: a JWS-shaped token goes only to the JWT verifiers whose issuer
// is its (unverified) iss; other tokens go to the introspection and static
// verifiers. A JWT verified before is answered from the cache, and the
// route's audience and scopes are still checked on it.
func (c *Chain) Verify(ctx context.Context, raw string, exp Expect) (Result, error) {
	a := attempt{chain: c, raw: raw}
	if c.cache.enabled() && len(c.jwt) > 0 && jwsShaped(raw) {
		a.key, a.keyed = newTokenKey(raw), true
		a.hit = c.cache.get(&a.key)
	}
	looksJWT, iss := true, ""
	if a.hit != nil {
		iss = a.hit.verifier().Issuer()
	} else {
		t := a.token()
		looksJWT = t.LooksLikeJWT()
		if t.Claims != nil {
			iss = t.Claims.Issuer
		}
	}
	tried := false
	if looksJWT {
		for _, cand := range c.jwt {
			if !acceptsIssuer(cand.Verifier, iss) {
				continue
			}
			tried = true
			res, err := a.tryJWT(ctx, cand)
			if a.judge(cand, res, err, &exp) {
				return a.sender(ctx, cand, res, &exp)
			}
		}
	}
	if !tried {
		for _, cand := range c.other {
			id, err := cand.Verifier.Verify(ctx, a.token(), cand.Audiences)
			res := c.result(id)
			if a.judge(cand, res, err, &exp) {
				return a.sender(ctx, cand, res, &exp)
			}
		}
	}
	return a.refusal()
}

// sender checks an accepted token against the request's sender: a bound
// token without its proof or certificate is refused, whatever other
// verifiers would say.
func (a *attempt) sender(ctx context.Context, cand Candidate, res Result, exp *Expect) (Result, error) {
	s := exp.Sender
	if s == nil {
		s = &plainBearer
	}
	if err := s.check(ctx, res, a.raw); err != nil {
		return Result{failedBy: cand.Verifier.Name()}, err
	}
	return res, nil
}

// plainBearer is the sender of a request that says nothing of one: a
// Bearer token, no proof, no certificate. Never modified.
var plainBearer Sender

// attempt is one Verify call's state.
type attempt struct {
	chain *Chain
	raw   string
	tok   *Token // parsed on first need
	key   tokenKey
	keyed bool
	hit   *tokenEntry

	scopeBy       string // a verifier that accepted the token, without the scopes
	unavailable   error
	unavailableBy string
	first         error
	firstBy       string
}

func (a *attempt) token() *Token {
	if a.tok == nil {
		a.tok = ParseToken(a.raw)
	}
	return a.tok
}

// tryJWT offers the token to cand's JWT verifier, or to the cache entry
// when that verifier is the one that accepted it before.
func (a *attempt) tryJWT(ctx context.Context, cand Candidate) (Result, error) {
	if a.hit != nil && cand.Verifier == Verifier(a.hit.verifier()) {
		if err := a.hit.checkAudience(a.chain.cache, cand.Audiences); err != nil {
			return Result{}, err
		}
		return Result{entry: a.hit, cache: a.chain.cache}, nil
	}
	cj, cacheable := cand.Verifier.(cacheableJWT)
	cacheable = cacheable && a.keyed
	var keys keysVersion
	if cacheable {
		// Read before Verify: should the keys change meanwhile, the entry
		// is already stale rather than vouched for by keys that may not
		// hold the signing key.
		keys = cj.keysVersion()
	}
	t := a.token()
	id, err := cand.Verifier.Verify(ctx, t, cand.Audiences)
	if err != nil {
		return Result{}, err
	}
	if cacheable {
		if e := a.chain.cache.put(a.key, cj, keys, t, id); e != nil {
			return Result{entry: e, cache: a.chain.cache}, nil
		}
	}
	return a.chain.result(id), nil
}

// judge records a verifier's answer; it reports whether res stands: the
// token was accepted with every scope wanted.
func (a *attempt) judge(cand Candidate, res Result, err error, exp *Expect) bool {
	name := cand.Verifier.Name()
	switch {
	case err == nil && res.hasScopes(exp.Scopes, exp.Broader):
		return true
	case err == nil:
		if a.scopeBy == "" {
			a.scopeBy = name
		}
	case IsUnavailable(err):
		if a.unavailable == nil {
			a.unavailable, a.unavailableBy = err, name
		}
	case a.first == nil:
		a.first, a.firstBy = err, name
	}
	return false
}

// refusal is the answer when no verifier accepted the token.
func (a *attempt) refusal() (Result, error) {
	switch {
	case a.scopeBy != "":
		return Result{failedBy: a.scopeBy}, ErrScopeInsufficient
	case a.unavailable != nil:
		return Result{failedBy: a.unavailableBy}, a.unavailable
	case a.first != nil:
		return Result{failedBy: a.firstBy}, a.first
	}
	t := a.token()
	if t.LooksLikeJWT() && len(a.chain.jwt) > 0 {
		if err := t.Malformed(); err != nil {
			return Result{}, err
		}
		return Result{}, ErrIssuerUntrusted
	}
	return Result{}, ErrTokenMalformed
}

// result wraps a fresh identity. Its claims are read from the payload only
// when a route asks for one (Result.Claim), not on every Check.
func (c *Chain) result(id *Identity) Result {
	if id == nil {
		return Result{}
	}
	return Result{id: id, cache: c.cache}
}

// Result is a verified identity: fresh from a verifier, or answered by the
// token cache. Its strings are safe to read concurrently and never change.
type Result struct {
	id    *Identity
	entry *tokenEntry
	cache *TokenCache
	// failedBy names the verifier whose error Verify returned.
	failedBy string
}

// Verifier is the name of the verifier that accepted the token, or on a
// failure the one whose error was returned ("" if none).
func (r Result) Verifier() string {
	switch {
	case r.entry != nil:
		return r.entry.verifier().Name()
	case r.id != nil:
		return r.id.Verifier
	}
	return r.failedBy
}

// Subject is the token's sub.
func (r Result) Subject() string {
	switch {
	case r.entry != nil:
		return r.entry.fields().sub
	case r.id != nil:
		return r.id.Subject
	}
	return ""
}

// Issuer is the token's iss.
func (r Result) Issuer() string {
	switch {
	case r.entry != nil:
		return r.entry.verifier().Issuer()
	case r.id != nil:
		return r.id.Issuer
	}
	return ""
}

// ClientID is the token's client_id (or azp).
func (r Result) ClientID() string {
	switch {
	case r.entry != nil:
		return r.entry.fields().clientID
	case r.id != nil:
		return r.id.ClientID
	}
	return ""
}

// Scopes are the granted scopes, space-delimited.
func (r Result) Scopes() string {
	switch {
	case r.entry != nil:
		return r.entry.fields().joinedScopes
	case r.id != nil:
		return strings.Join(r.id.Scopes, " ")
	}
	return ""
}

// Claim is the header value of the named claim ("" if the token has none).
// Only the claims of CacheOptions.ClaimNames are known.
func (r Result) Claim(name string) string {
	switch {
	case r.entry != nil:
		return r.entry.fields().claim(r.cache.claimNames, name)
	case r.id != nil && r.id.Payload != nil:
		return claimValues(r.id.Payload, []string{name})[name]
	}
	return ""
}

// Identity returns the identity as a verifier reports it. A cached
// verification has no payload: its token's exp is Expiry.
func (r Result) Identity() *Identity {
	switch {
	case r.id != nil:
		return r.id
	case r.entry != nil:
		id := &Identity{Verifier: r.Verifier(), Subject: r.Subject(), Issuer: r.Issuer(), ClientID: r.ClientID()}
		f := r.entry.fields()
		for rest, lens := f.joinedScopes, f.scopeLens; len(lens) > 0; {
			n := entryLen(lens)
			id.Scopes = append(id.Scopes, rest[:n])
			if lens = lens[2:]; len(lens) > 0 {
				rest = rest[n+1:]
			}
		}
		return id
	}
	return nil
}

// Expiry is the token's exp when the cache answered, else zero (read it
// from the identity's payload).
func (r Result) Expiry() time.Time {
	if r.entry != nil {
		return time.Unix(0, r.entry.exp)
	}
	return time.Time{}
}

// TokenHash returns the SHA-256 of the token when the cache computed it.
func (r Result) TokenHash() ([32]byte, bool) {
	if r.entry != nil {
		return r.entry.key, true
	}
	return [32]byte{}, false
}

// Cached reports whether the token cache answered (or now holds) this
// verification.
func (r Result) Cached() bool { return r.entry != nil }

// hasScopes reports whether the identity grants every scope in want,
// itself or through a broader scope.
func (r Result) hasScopes(want []string, broader map[string][]string) bool {
	if r.entry == nil && r.id == nil {
		return false
	}
	for _, w := range want {
		if !r.has(w) && !r.hasAny(broader[w]) {
			return false
		}
	}
	return true
}

func (r Result) hasAny(scopes []string) bool {
	for _, s := range scopes {
		if r.has(s) {
			return true
		}
	}
	return false
}

// has reports whether the identity grants scope s itself.
func (r Result) has(s string) bool {
	if r.entry != nil {
		return r.entry.hasScope(s)
	}
	for _, g := range r.id.Scopes {
		if g == s {
			return true
		}
	}
	return false
}

// Candidates returns the chain's verifiers with their audiences: a copy,
// JWT verifiers first.
func (c *Chain) Candidates() []Candidate {
	return append(append([]Candidate(nil), c.jwt...), c.other...)
}
