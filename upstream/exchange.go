package upstream

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/verify"
)

// RFC 8693 names.
const (
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
)

// Exchange defaults.
const (
	DefaultExchangeCacheSize = 100000
	// DefaultExchangeMargin is how long before its expires_in an exchanged
	// token stops being reused.
	DefaultExchangeMargin = 30 * time.Second
)

// refusalCodes are the OAuth error codes with which a provider refuses to
// exchange this particular token: the client's problem, answered 403.
var refusalCodes = []string{"invalid_grant", "invalid_target", "unauthorized_client", "invalid_request", "invalid_scope", "access_denied"}

// ExchangeOptions configure one route's token exchange.
type ExchangeOptions struct {
	// Route names the route in log lines.
	Route string
	// TokenEndpoint is the provider's token endpoint. Empty: discovered from
	// Issuer's OpenID Connect or RFC 8414 metadata on first use.
	TokenEndpoint string
	Issuer        string
	// AllowInsecureHTTP permits an http token endpoint off loopback.
	AllowInsecureHTTP bool
	ClientID          string
	ClientSecret      string
	// ClientAuth is "basic" (client_secret_basic, the default) or "post"
	// (client_secret_post).
	ClientAuth string
	Audience   string
	Scopes     []string
	// Timeout bounds one exchange (and one discovery); 0 means
	// config.DefaultExchangeTimeout.
	Timeout time.Duration
	// CacheSize bounds the result cache; 0 means DefaultExchangeCacheSize,
	// negative disables it.
	CacheSize int
	// Margin: a result is reused until expires_in minus Margin (half of
	// expires_in when that is shorter than 2*Margin); 0 means
	// DefaultExchangeMargin.
	Margin time.Duration
	Client *http.Client
	Now    func() time.Time
	Logger *slog.Logger
}

// Exchanger performs RFC 8693 token exchanges for one route, caches their
// results per (token hash, audience, scopes) and makes concurrent identical
// exchanges share one request. It is safe for concurrent use.
type Exchanger struct {
	o         ExchangeOptions
	scope     string
	sub       string // cache key part: audience and scopes
	basicAuth string
	client    *http.Client
	cache     *shardedCache[string]
	group     singleflight.Group
	now       func() time.Time
	log       *slog.Logger

	mu       sync.Mutex
	endpoint string    // discovered token endpoint, once known
	failedAt time.Time // last failed discovery
	failErr  error
}

// discoveryRetry is how long a failed discovery is answered from memory
// before the metadata is fetched again.
const discoveryRetry = 10 * time.Second

// NewExchanger checks o and returns an Exchanger. It does no network I/O.
// Its errors are *verify.OptionError, naming the offending option's
// configuration key, and never contain the client secret.
func NewExchanger(o ExchangeOptions) (*Exchanger, error) {
	if o.ClientID == "" {
		return nil, &verify.OptionError{Key: "client_id", Err: errors.New("is required")}
	}
	if o.ClientSecret == "" {
		return nil, &verify.OptionError{Key: "client_secret", Err: errors.New("is required")}
	}
	if o.Audience == "" {
		return nil, &verify.OptionError{Key: "audience", Err: errors.New("is required")}
	}
	if o.TokenEndpoint != "" {
		if err := verify.CheckURL(o.TokenEndpoint, o.AllowInsecureHTTP); err != nil {
			return nil, &verify.OptionError{Key: "token_endpoint", Err: err}
		}
	} else if _, err := verify.DiscoveryURLs(o.Issuer); err != nil {
		return nil, &verify.OptionError{Key: "token_endpoint", Err: fmt.Errorf("is required: %w", err)}
	}
	e := &Exchanger{o: o, scope: strings.Join(o.Scopes, " "), endpoint: o.TokenEndpoint, client: o.Client, now: o.Now, log: o.Logger}
	e.sub = o.Audience + "\x00" + e.scope
	switch o.ClientAuth {
	case "", "basic", "client_secret_basic":
		// RFC 6749 section 2.3.1: both parts form-urlencoded before Basic.
		cred := url.QueryEscape(o.ClientID) + ":" + url.QueryEscape(o.ClientSecret)
		e.basicAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(cred))
	case "post", "client_secret_post":
	default:
		return nil, &verify.OptionError{Key: "client_auth", Err: errors.New("must be basic or post")}
	}
	if e.o.Timeout <= 0 {
		e.o.Timeout = config.DefaultExchangeTimeout
	}
	if e.o.Margin <= 0 {
		e.o.Margin = DefaultExchangeMargin
	}
	switch {
	case o.CacheSize == 0:
		e.cache = newShardedCache[string](DefaultExchangeCacheSize)
	case o.CacheSize > 0:
		e.cache = newShardedCache[string](o.CacheSize)
	}
	if e.client == nil {
		e.client = newHTTPClient(e.o.Timeout)
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	return e, nil
}

// Authorization returns "Bearer <exchanged token>" for req: from the cache,
// or by one exchange shared with every concurrent request for the same
// token. Errors wrap ErrExchangeRefused or ErrExchangeUnavailable; they
// never hold a token or the client secret.
func (e *Exchanger) Authorization(ctx context.Context, h TokenHash, req Request) (string, error) {
	key := cacheKey{token: h, sub: e.sub}
	if v, ok := e.cache.get(key, e.now()); ok {
		return v, nil
	}
	ch := e.group.DoChan(string(h[:]), func() (any, error) {
		if v, ok := e.cache.get(key, e.now()); ok {
			return v, nil
		}
		// The exchange outlives a caller that gives up: others may wait on it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.o.Timeout)
		defer cancel()
		tok, until, err := e.exchange(ctx, req)
		if err != nil {
			return "", err
		}
		header := "Bearer " + tok
		if exp := req.expiry(); !exp.IsZero() && exp.Before(until) {
			until = exp
		}
		e.cache.put(key, header, until, e.now())
		return header, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", fmt.Errorf("%w: %v", ErrExchangeUnavailable, ctx.Err())
	}
}

// tokenResponse is the part of an RFC 8693 section 2.2 answer used here.
type tokenResponse struct {
	AccessToken     string      `json:"access_token"`
	TokenType       string      `json:"token_type"`
	ExpiresIn       json.Number `json:"expires_in"`
	IssuedTokenType string      `json:"issued_token_type"`
	Error           string      `json:"error"`
}

// exchange makes one token exchange and returns the issued token and until
// when it may be reused (zero: not at all).
func (e *Exchanger) exchange(ctx context.Context, req Request) (string, time.Time, error) {
	endpoint, err := e.tokenEndpoint(ctx)
	if err != nil {
		e.warn("token endpoint discovery failed", err)
		return "", time.Time{}, fmt.Errorf("%w: discovery: %v", ErrExchangeUnavailable, err)
	}
	form := url.Values{
		"grant_type":         {GrantTypeTokenExchange},
		"subject_token":      {req.Token},
		"subject_token_type": {TokenTypeAccessToken},
		"audience":           {e.o.Audience},
	}
	if e.scope != "" {
		form.Set("scope", e.scope)
	}
	if e.basicAuth == "" {
		form.Set("client_id", e.o.ClientID)
		form.Set("client_secret", e.o.ClientSecret)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%w: building request", ErrExchangeUnavailable)
	}
	hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hreq.Header.Set("Accept", "application/json")
	if e.basicAuth != "" {
		hreq.Header.Set("Authorization", e.basicAuth)
	}
	start := e.now()
	resp, err := e.client.Do(hreq)
	if err != nil {
		// *url.Error holds the URL only (the secret travels in the body or
		// a header), never the form.
		e.warn("token endpoint unreachable", err)
		return "", time.Time{}, fmt.Errorf("%w: %v", ErrExchangeUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := verify.ReadCapped(resp.Body, "answer")
	if err != nil {
		e.warn("reading the token endpoint's answer failed", err)
		return "", time.Time{}, fmt.Errorf("%w: %v", ErrExchangeUnavailable, err)
	}
	var tr tokenResponse
	jsonErr := json.Unmarshal(body, &tr)
	switch {
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusForbidden:
		if jsonErr == nil && slices.Contains(refusalCodes, tr.Error) {
			return "", time.Time{}, fmt.Errorf("%w: provider answered %d %s", ErrExchangeRefused, resp.StatusCode, tr.Error)
		}
		if jsonErr == nil && tr.Error == "invalid_client" {
			e.credentialsRejected(resp.StatusCode)
		}
		code := "an unknown error"
		if jsonErr == nil && tr.Error != "" && safeCode(tr.Error) {
			code = tr.Error
		}
		e.warn("token endpoint answered "+resp.Status+" with "+code, nil)
		return "", time.Time{}, fmt.Errorf("%w: provider answered %d with %s", ErrExchangeUnavailable, resp.StatusCode, code)
	case resp.StatusCode == http.StatusUnauthorized:
		e.credentialsRejected(resp.StatusCode)
		return "", time.Time{}, fmt.Errorf("%w: provider rejected tokengate's client credentials (401)", ErrExchangeUnavailable)
	case resp.StatusCode != http.StatusOK:
		e.warn("token endpoint answered "+resp.Status, nil)
		return "", time.Time{}, fmt.Errorf("%w: provider answered %d", ErrExchangeUnavailable, resp.StatusCode)
	case jsonErr != nil:
		e.warn("token endpoint answered unparseable JSON", nil)
		return "", time.Time{}, fmt.Errorf("%w: unparseable answer", ErrExchangeUnavailable)
	case !headerSafe(tr.AccessToken):
		e.warn("token endpoint answered without a usable access_token", nil)
		return "", time.Time{}, fmt.Errorf("%w: answer has no usable access_token", ErrExchangeUnavailable)
	case !strings.EqualFold(tr.TokenType, "Bearer"):
		e.warn("token endpoint issued a token that is not a bearer token", nil)
		return "", time.Time{}, fmt.Errorf("%w: issued token_type is not Bearer", ErrExchangeUnavailable)
	}
	return tr.AccessToken, e.reuseUntil(start, tr.ExpiresIn), nil
}

// reuseUntil is when a token issued at start with expires_in stops being
// reused: expires_in minus the margin (half of expires_in when shorter than
// twice the margin); zero when expires_in is missing or not a positive
// number of seconds.
func (e *Exchanger) reuseUntil(start time.Time, expiresIn json.Number) time.Time {
	n, err := expiresIn.Int64()
	if err != nil || n <= 0 || n > 1<<31 {
		return time.Time{}
	}
	life := time.Duration(n) * time.Second
	if life < 2*e.o.Margin {
		return start.Add(life / 2)
	}
	return start.Add(life - e.o.Margin)
}

// tokenEndpoint returns the configured token endpoint, or discovers it once
// from the issuer's metadata.
func (e *Exchanger) tokenEndpoint(ctx context.Context) (string, error) {
	e.mu.Lock()
	endpoint, failedAt, failErr := e.endpoint, e.failedAt, e.failErr
	e.mu.Unlock()
	if endpoint != "" {
		return endpoint, nil
	}
	if failErr != nil && e.now().Sub(failedAt) < discoveryRetry {
		return "", failErr
	}
	v, err, _ := e.group.Do("\x00discovery", func() (any, error) {
		return verify.DiscoverEndpoint(ctx, e.client, e.o.Issuer, "token_endpoint", e.o.AllowInsecureHTTP)
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		e.failedAt, e.failErr = e.now(), err
		return "", err
	}
	e.endpoint = v.(string)
	return e.endpoint, nil
}

func (e *Exchanger) credentialsRejected(status int) {
	e.log.Error("token exchange: the provider rejected tokengate's own client credentials; check upstream_token.client_id and the client secret",
		"route", e.o.Route, "status", status)
}

func (e *Exchanger) warn(msg string, err error) {
	if err != nil {
		e.log.Warn("token exchange: "+msg, "route", e.o.Route, "error", err.Error())
		return
	}
	e.log.Warn("token exchange: "+msg, "route", e.o.Route)
}

// headerSafe reports whether a token can be sent as a Bearer credential:
// non-empty, at most 16 KiB, RFC 6750 b64token characters only.
func headerSafe(tok string) bool {
	if tok == "" || len(tok) > 16<<10 {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~+/=", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// safeCode reports whether an OAuth error code from a provider may be
// logged: short, and letters, digits and '_' only.
func safeCode(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
