package verify

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// maxCachedBody bounds the introspection responses kept in the cache: a
// larger response is served but not cached, so the cache's memory stays
// bounded by CacheSize times this.
const maxCachedBody = 64 << 10

// IntrospectionOptions configures an OAuth 2.0 token introspection (RFC 7662)
// verifier.
type IntrospectionOptions struct {
	// Name is the verifier's configured name.
	Name string
	// URL is the introspection endpoint; https unless loopback or
	// AllowInsecureHTTP.
	URL string
	// ClientID and ClientSecret authenticate tokengate to the endpoint.
	ClientID     string
	ClientSecret string
	// ClientAuth is "basic" (client_secret_basic, the default) or "post"
	// (client_secret_post).
	ClientAuth string
	// Timeout bounds one introspection request (default 2s).
	Timeout time.Duration
	// CacheTTL is how long an active result is reused (default 60s), never
	// beyond the token's own exp.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached results (default 10000).
	CacheSize int
	// Issuer, if set, must equal the response's "iss".
	Issuer string
	// Audiences, if set, are the expected audiences: the response must carry
	// an "aud" containing one of them. Without them the route's audiences
	// apply, and a response without "aud" is accepted.
	Audiences []string
	// ClockSkew is the tolerance for exp and nbf.
	ClockSkew time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// AllowInsecureHTTP permits an http:// URL on a non-loopback host.
	AllowInsecureHTTP bool
	// Client is the HTTP client; nil means a default one.
	Client *http.Client
	// Logger receives endpoint failures; nil means slog.Default().
	Logger *slog.Logger
	// OnRequest, if set, is told the duration of every request to the
	// endpoint.
	OnRequest func(verifier string, d time.Duration)
	// OnCache, if set, is told whether each verification was answered from
	// the cache ("hit") or not ("miss").
	OnCache func(result string)
}

// Introspection verifies opaque tokens by asking the identity provider's
// introspection endpoint (RFC 7662).
//
// A response counts as "active" only when its "active" member is the JSON
// boolean true. "exp" and "nbf", when present, are checked with the clock
// skew; "iss" must equal the configured Issuer when one is set. The audience
// rule: the expected audiences are the verifier's own Audiences, else those
// the route passes to Verify. When the response has an "aud" (string or
// array) it must contain one of the expected audiences (any "aud" passes when
// none are expected). When the response has no "aud" it is accepted only if
// the verifier has no Audiences of its own: many identity providers omit
// "aud" from introspection responses, so a route's default resource cannot be
// demanded of them, but an explicitly configured audience is always enforced.
//
// Active results are cached under the SHA-256 of the token for
// min(CacheTTL, exp - now) in a bounded LRU; inactive results and failures
// are never cached. Concurrent verifications of one token share one request.
// While the endpoint is down, cached results keep being served until their
// entry expires; after that the token gets ErrIntrospectionUnavailable.
type Introspection struct {
	name       string
	url        string
	clientID   string
	secret     string
	basicAuth  string // precomputed "Basic ..." header; "" for client_secret_post
	issuer     string
	audiences  []string
	skew       time.Duration
	ttl        time.Duration
	timeout    time.Duration
	now        func() time.Time
	client     *http.Client
	log        *slog.Logger
	onRequest  func(string, time.Duration)
	onCache    func(string)
	cache      *lruCache
	lastWarned atomic.Int64 // unix nanoseconds of the last failure log line
	lastErrLog atomic.Int64 // the same, for the client-credentials error line

	// calls shares one request among concurrent verifications of a token.
	calls flight[cacheKey, *introspected]
}

// introspected is an active, issuer-checked introspection result. It is
// shared between callers and the cache, and never modified.
type introspected struct {
	id      *Identity
	aud     []string
	expires time.Time // when the cache must drop it
}

// NewIntrospection builds an introspection verifier. Its errors are
// *OptionError, naming the offending option's configuration key (for
// example "client_id"), and never contain the client secret.
func NewIntrospection(o IntrospectionOptions) (*Introspection, error) {
	if err := CheckURL(o.URL, o.AllowInsecureHTTP); err != nil {
		return nil, &OptionError{Key: "introspection_url", Err: err}
	}
	if o.ClientID == "" {
		return nil, optionErr("client_id", "is required")
	}
	if o.ClientSecret == "" {
		return nil, optionErr("client_secret", "is required")
	}
	v := &Introspection{
		name:      o.Name,
		url:       o.URL,
		clientID:  o.ClientID,
		secret:    o.ClientSecret,
		issuer:    o.Issuer,
		audiences: slices.Clone(o.Audiences),
		skew:      o.ClockSkew,
		ttl:       o.CacheTTL,
		timeout:   o.Timeout,
		now:       o.Now,
		client:    o.Client,
		log:       o.Logger,
		onRequest: o.OnRequest,
		onCache:   o.OnCache,
	}
	switch o.ClientAuth {
	case "", ClientAuthBasic:
		// RFC 6749 section 2.3.1: both parts form-urlencoded before Basic.
		cred := url.QueryEscape(o.ClientID) + ":" + url.QueryEscape(o.ClientSecret)
		v.basicAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(cred))
	case ClientAuthPost:
	default:
		return nil, optionErr("client_auth", "must be basic or post")
	}
	if v.timeout <= 0 {
		v.timeout = DefaultIntrospectionTimeout
	}
	if v.ttl <= 0 {
		v.ttl = DefaultIntrospectionCacheTTL
	}
	size := o.CacheSize
	if size <= 0 {
		size = DefaultIntrospectionCacheSize
	}
	v.cache = newLRUCache(size)
	if v.now == nil {
		v.now = time.Now
	}
	if v.client == nil {
		v.client = newHTTPClient(v.timeout)
	}
	if v.log == nil {
		v.log = slog.Default()
	}
	if v.onRequest == nil {
		v.onRequest = func(string, time.Duration) {}
	}
	if v.onCache == nil {
		v.onCache = func(string) {}
	}
	return v, nil
}

// Name implements Verifier.
func (v *Introspection) Name() string { return v.name }

// Kind implements Verifier.
func (v *Introspection) Kind() Kind { return KindIntrospection }

// Issuer implements Verifier: introspection verifiers are not chosen by the
// token's issuer.
func (v *Introspection) Issuer() string { return "" }

// Ready implements Verifier: an introspection verifier needs nothing loaded.
func (v *Introspection) Ready() bool { return true }

// Start implements Verifier; there is no background work.
func (v *Introspection) Start(context.Context) {}

// Verify implements Verifier. The returned Identity is shared with the cache
// and other callers: do not modify it.
func (v *Introspection) Verify(ctx context.Context, t *Token, audiences []string) (*Identity, error) {
	key := hashToken(t.Raw)
	if res, ok := v.cache.get(key, v.now()); ok {
		v.onCache("hit")
		return v.accept(res, audiences)
	}
	v.onCache("miss")
	res, err := v.lookup(ctx, key, t.Raw)
	if err != nil {
		return nil, err
	}
	return v.accept(res, audiences)
}

// accept applies the per-call audience rule to an active result.
func (v *Introspection) accept(res *introspected, audiences []string) (*Identity, error) {
	if len(v.audiences) > 0 {
		audiences = v.audiences
	}
	if len(res.aud) == 0 {
		if len(v.audiences) > 0 {
			return nil, fmt.Errorf("%w: response has no aud", ErrAudienceMismatch)
		}
		return res.id, nil
	}
	if len(audiences) == 0 {
		return res.id, nil
	}
	for _, a := range res.aud {
		if slices.Contains(audiences, a) {
			return res.id, nil
		}
	}
	return nil, ErrAudienceMismatch
}

// lookup returns the shared result of one request for the token hashed to
// key, starting the request unless one is in flight. The request runs apart
// from ctx: a caller that gives up does not cancel it for the others.
func (v *Introspection) lookup(ctx context.Context, key cacheKey, raw string) (*introspected, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIntrospectionUnavailable, err)
	}
	detached := context.WithoutCancel(ctx)
	c := v.calls.do(key, func() (*introspected, error) {
		// A request that just finished stored its result before leaving
		// the flight; look again so that it is not repeated.
		if res, hit := v.cache.get(key, v.now()); hit {
			return res, nil
		}
		res, cacheable, err := v.introspect(detached, raw)
		if err == nil && cacheable {
			v.cache.put(key, res, res.expires)
		}
		return res, err
	})
	res, err := c.wait(ctx)
	if err != nil && err == ctx.Err() { // this caller gave up; the call goes on
		return nil, fmt.Errorf("%w: %w", ErrIntrospectionUnavailable, err)
	}
	return res, err
}

// introspectionResponse holds the RFC 7662 members tokengate reads.
type introspectionResponse struct {
	Scope     ScopeList
	ClientID  string
	Subject   string
	Issuer    string
	Audience  StringList
	Expiry    *NumericDate
	NotBefore *NumericDate
}

// introspect asks the endpoint about raw and judges the answer. It reports
// whether the result may be cached.
func (v *Introspection) introspect(ctx context.Context, raw string) (*introspected, bool, error) {
	body, err := v.post(ctx, raw)
	if err != nil {
		return nil, false, v.postError(err)
	}
	return v.judge(body)
}

// judge parses an introspection response body and applies the checks that
// do not depend on the route. It reports whether the result may be cached.
//
// The body is read like a token payload (strictjson.go): exact member
// names, and a duplicate member name makes the whole body unreadable.
func (v *Introspection) judge(body []byte) (*introspected, bool, error) {
	// A body that is not one strict JSON object, or an active response
	// whose members have the wrong types, means the identity provider is
	// broken, not that the token is bad: answer "unavailable" (503), not
	// "invalid" (401).
	var active, scope, clientID, sub, iss, aud, exp, nbf []byte
	err := eachMember(body, func(name, val []byte) error {
		switch string(name) {
		case "active":
			active = val
		case "scope":
			scope = val
		case "client_id":
			clientID = val
		case "sub":
			sub = val
		case "iss":
			iss = val
		case "aud":
			aud = val
		case "exp":
			exp = val
		case "nbf":
			nbf = val
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("response: %w", err)
		v.warn(err)
		return nil, false, fmt.Errorf("%w: %w", ErrIntrospectionUnavailable, err)
	}
	// Only the JSON boolean true is active: "true" (a string), 1 or a missing
	// member are not.
	if string(active) != "true" {
		return nil, false, ErrTokenInactive
	}
	r, err := decodeIntrospection(scope, clientID, sub, iss, aud, exp, nbf)
	if err != nil {
		if errors.Is(err, ErrTokenMalformed) {
			return nil, false, err
		}
		err = fmt.Errorf("active response: %w", err)
		v.warn(err)
		return nil, false, fmt.Errorf("%w: %w", ErrIntrospectionUnavailable, err)
	}
	now := v.now()
	if r.Expiry != nil && !now.Before(r.Expiry.Add(v.skew)) {
		return nil, false, ErrTokenExpired
	}
	if r.NotBefore != nil && now.Add(v.skew).Before(r.NotBefore.Time) {
		return nil, false, ErrTokenNotYetValid
	}
	if v.issuer != "" && r.Issuer != v.issuer {
		return nil, false, ErrIssuerUntrusted
	}
	res := &introspected{
		id: &Identity{
			Verifier: v.name,
			Subject:  r.Subject,
			Issuer:   r.Issuer,
			ClientID: r.ClientID,
			Scopes:   r.Scope,
			Payload:  body,
		},
		aud:     r.Audience,
		expires: now.Add(v.ttl),
	}
	if r.Expiry != nil && r.Expiry.Before(res.expires) {
		res.expires = r.Expiry.Time
	}
	return res, len(body) <= maxCachedBody && now.Before(res.expires), nil
}

// decodeIntrospection decodes the members judge reads (nil: absent). A
// member of the wrong type is an error of the identity provider; a scope
// that is not a scope-token, or an identity value that could not be sent as
// a header value, makes the token malformed (an error wrapping
// ErrTokenMalformed), as it would in a JWT.
func decodeIntrospection(scope, clientID, sub, iss, aud, exp, nbf []byte) (*introspectionResponse, error) {
	var r introspectionResponse
	var err error
	str := func(v []byte, claim string, dst *string) {
		if v != nil && err == nil {
			*dst, err = decodeString(v, claim)
		}
	}
	str(clientID, "client_id", &r.ClientID)
	str(sub, "sub", &r.Subject)
	str(iss, "iss", &r.Issuer)
	if aud != nil && err == nil {
		r.Audience, err = decodeStringList(aud, "aud")
	}
	if exp != nil && err == nil {
		r.Expiry, err = decodeNumericDate(exp, "exp")
	}
	if nbf != nil && err == nil {
		r.NotBefore, err = decodeNumericDate(nbf, "nbf")
	}
	if scope != nil && err == nil {
		r.Scope, err = decodeScopes(scope, "scope")
		if errors.Is(err, errScopeToken) {
			return nil, fmt.Errorf("%w: introspection: %w", ErrTokenMalformed, err)
		}
	}
	if err != nil {
		return nil, err
	}
	if err := checkIdentityValues(r.Subject, r.ClientID, ""); err != nil {
		return nil, fmt.Errorf("%w: introspection: %w", ErrTokenMalformed, err)
	}
	if !HeaderSafe(r.Issuer) {
		return nil, fmt.Errorf("%w: introspection: iss cannot be sent as a header value", ErrTokenMalformed)
	}
	return &r, nil
}

// post sends the introspection request and returns the 200 response body.
// Neither the token nor the secret can appear in its errors: both travel in
// the request body or the Authorization header, never in the URL.
func (v *Introspection) post(ctx context.Context, raw string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	if v.basicAuth == "" {
		form.Set("client_id", v.clientID)
		form.Set("client_secret", v.secret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.url, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, errors.New("cannot build the request")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if v.basicAuth != "" {
		req.Header.Set("Authorization", v.basicAuth)
	}
	start := time.Now()
	resp, err := v.client.Do(req)
	if err != nil {
		v.onRequest(v.name, time.Since(start))
		return nil, err
	}
	defer resp.Body.Close()
	body, err := ReadCapped(resp.Body, "the response")
	v.onRequest(v.name, time.Since(start))
	switch {
	case resp.StatusCode != http.StatusOK:
		return nil, statusError(resp.StatusCode, body)
	case err != nil:
		return nil, err
	}
	return body, nil
}

// warnEvery bounds the failure log lines while an endpoint is down.
const warnEvery = 10 * time.Second

func (v *Introspection) warn(err error) { v.complain(false, err) }

// complain logs a failure at most once per warnEvery: at error level when
// tokengate's own configuration is at fault (asError), else as a warning.
func (v *Introspection) complain(asError bool, err error) {
	stamp := &v.lastWarned
	if asError {
		stamp = &v.lastErrLog
	}
	now := time.Now().UnixNano()
	last := stamp.Load()
	if now-last < int64(warnEvery) || !stamp.CompareAndSwap(last, now) {
		return
	}
	if asError {
		v.log.Error("token introspection failed: the endpoint rejected tokengate's client credentials", "verifier", v.name, "error", err)
		return
	}
	v.log.Warn("token introspection failed", "verifier", v.name, "error", err)
}
