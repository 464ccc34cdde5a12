package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
)

// staticKeys is a key set fixed at start-up.
type staticKeys struct{ set *keySet }

func (s staticKeys) current() *keySet                         { return s.set }
func (s staticKeys) refetch(context.Context) (*keySet, error) { return s.set, nil }
func (s staticKeys) ready() bool                              { return true }
func (s staticKeys) start(context.Context)                    {}

// RemoteOptions tunes a remote JWKS.
type RemoteOptions struct {
	// Refresh is the background refresh period (default
	// DefaultJWKSRefresh).
	Refresh time.Duration
	// MinRefetchInterval bounds early refetches after an unknown kid
	// (default DefaultJWKSMinRefetchInterval).
	MinRefetchInterval time.Duration
	// Timeout bounds one fetch (default DefaultJWKSTimeout).
	Timeout time.Duration
	// AllowInsecureHTTP permits http:// URLs on non-loopback hosts.
	AllowInsecureHTTP bool
	// Client is the HTTP client; nil means a default one.
	Client *http.Client
	// Logger receives fetch failures; nil means slog.Default().
	Logger *slog.Logger
	// OnFetch, if set, is told every fetch's result ("success" or "failure")
	// and the number of keys then in use.
	OnFetch func(verifier, result string, keys int)
}

// remoteKeys is a JWKS fetched over HTTP: loaded in the background, refreshed
// periodically, and refetched early (one fetch at a time, rate-limited) when a
// token names an unknown kid. A failed fetch keeps the last good keys.
type remoteKeys struct {
	name string
	// url is the JWKS URL: configured, or discovered from issuer's
	// metadata on the first successful fetch (nil until then).
	url    atomic.Pointer[string]
	issuer string
	allow  []jwa.SignatureAlgorithm
	opts   RemoteOptions
	log    *slog.Logger

	set atomic.Pointer[keySet]

	// fetches holds the one fetch in flight (under the key struct{}{}).
	fetches flight[struct{}, *keySet]
	// mu guards lastEarly and lastErr.
	mu sync.Mutex
	// lastEarly is when the last early (unknown kid) fetch started; the
	// initial load and the periodic refresh do not count against the rate
	// limit, which is "at most one early refetch per MinRefetchInterval".
	lastEarly time.Time
	// lastErr is the result of the last completed fetch.
	lastErr error
}

// newRemoteKeys returns a remote JWKS. With rawURL empty, the JWKS URL is
// discovered from issuer's metadata (see DiscoveryURLs).
func newRemoteKeys(name, rawURL, issuer string, allow []jwa.SignatureAlgorithm, o RemoteOptions) (*remoteKeys, error) {
	if rawURL != "" {
		if err := CheckURL(rawURL, o.AllowInsecureHTTP); err != nil {
			return nil, err
		}
	} else {
		if _, err := DiscoveryURLs(issuer); err != nil {
			return nil, err
		}
		if err := CheckURL(issuer, o.AllowInsecureHTTP); err != nil {
			return nil, fmt.Errorf("issuer for discovery %w", err)
		}
	}
	if o.Refresh <= 0 {
		o.Refresh = DefaultJWKSRefresh
	}
	if o.MinRefetchInterval <= 0 {
		o.MinRefetchInterval = DefaultJWKSMinRefetchInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultJWKSTimeout
	}
	if o.Client == nil {
		o.Client = newHTTPClient(o.Timeout)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	r := &remoteKeys{name: name, issuer: issuer, allow: allow, opts: o, log: o.Logger}
	if rawURL != "" {
		r.url.Store(&rawURL)
	}
	return r, nil
}

// jwksURL returns the JWKS URL, discovering it first if needed.
func (r *remoteKeys) jwksURL(ctx context.Context) (string, error) {
	if u := r.url.Load(); u != nil {
		return *u, nil
	}
	u, err := DiscoverEndpoint(ctx, r.opts.Client, r.issuer, "jwks_uri", r.opts.AllowInsecureHTTP)
	if err != nil {
		return "", err
	}
	r.url.Store(&u)
	r.log.Info("JWKS URL discovered", "verifier", r.name, "jwks_uri", u)
	return u, nil
}

// CheckURL enforces https for identity-provider URLs, except on loopback
// hosts or when allowInsecure is set.
func CheckURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("must be an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowInsecure || isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("must be an https URL (http is allowed only on loopback hosts or with allow_insecure_http: true)")
	}
	return errors.New("must be an https URL")
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// idpMaxIdlePerHost is how many idle connections idpTransport keeps to one
// identity provider. net/http's default is 2: under load, every
// introspection beyond two in flight at once would then open a new
// connection, and against an https endpoint pay a TLS handshake, which
// costs more CPU than the Check.
const idpMaxIdlePerHost = 64

// idpTransport carries every identity-provider call: http.DefaultTransport's
// settings (proxy from the environment, dial and TLS handshake timeouts,
// HTTP/2), with more idle connections per host. Shared by all verifiers
// and token exchangers, so a configuration reload keeps the warm
// connections.
var idpTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = idpMaxIdlePerHost
	t.MaxIdleConns = 4 * idpMaxIdlePerHost
	return t
}()

// IdPTransport returns the transport every identity-provider call shares
// (JWKS, discovery, introspection, token exchange).
func IdPTransport() *http.Transport { return idpTransport }

// newHTTPClient returns a client for identity-provider calls: bounded time,
// few redirects, never from https down to http.
func newHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: idpTransport,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
				return errors.New("redirect from https to http refused")
			}
			return nil
		},
	}
}

func (r *remoteKeys) current() *keySet { return r.set.Load() }
func (r *remoteKeys) ready() bool      { return r.set.Load() != nil }

// refetch implements keySource: at most one fetch in flight, and at most one
// early fetch per MinRefetchInterval. Within the interval it answers without
// fetching: with the last fetch's error if that fetch failed (the endpoint is
// failing, so an unknown kid cannot be decided), else with the keys it has.
// A failed fetch is always reported as an error, even when older keys are
// still cached: a caller only refetches because those keys did not answer.
func (r *remoteKeys) refetch(ctx context.Context) (*keySet, error) {
	r.mu.Lock()
	c := r.fetches.running(struct{}{})
	if c == nil {
		if time.Since(r.lastEarly) < r.opts.MinRefetchInterval {
			cur, err := r.set.Load(), r.lastErr
			r.mu.Unlock()
			switch {
			case err != nil:
				return nil, err
			case cur == nil:
				return nil, errors.New("JWKS not loaded yet")
			}
			return cur, nil
		}
		r.lastEarly = time.Now()
		c = r.fetch()
	}
	r.mu.Unlock()
	return c.wait(ctx)
}

// fetch returns the fetch in flight, starting one if none is. A failed
// fetch keeps the last good keys in use.
func (r *remoteKeys) fetch() *flightCall[*keySet] {
	return r.fetches.do(struct{}{}, func() (*keySet, error) {
		set, err := r.download()
		r.mu.Lock()
		if err == nil {
			r.set.Store(set)
		}
		r.lastErr = err
		r.mu.Unlock()
		r.report(err)
		return set, err
	})
}

// fetchNow runs a fetch (sharing one in flight) regardless of the rate limit.
func (r *remoteKeys) fetchNow() error {
	_, err := r.fetch().wait(context.Background())
	return err
}

// report logs a failed fetch and tells OnFetch the result.
func (r *remoteKeys) report(err error) {
	result := "success"
	if err != nil {
		result = "failure"
		url := "(discovery from " + r.issuer + ")"
		if u := r.url.Load(); u != nil {
			url = *u
		}
		r.log.Warn("JWKS fetch failed", "verifier", r.name, "url", url, "error", err)
	}
	if r.opts.OnFetch != nil {
		n := 0
		if cur := r.set.Load(); cur != nil {
			n = len(cur.all)
		}
		r.opts.OnFetch(r.name, result, n)
	}
}

func (r *remoteKeys) download() (*keySet, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
	defer cancel()
	jwksURL, err := r.jwksURL(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS endpoint answered %s", resp.Status)
	}
	body, err := ReadCapped(resp.Body, "JWKS")
	if err != nil {
		return nil, err
	}
	keys, _, err := keysFromJWKS(body, r.allow)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS has no usable signature key")
	}
	return newKeySet(keys), nil
}

// start loads the keys, retrying with backoff until the first success, then
// refreshes them every Refresh until ctx ends.
func (r *remoteKeys) start(ctx context.Context) {
	go func() {
		backoff := 500 * time.Millisecond
		for r.fetchNow() != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 30*time.Second, r.opts.Refresh)
		}
		t := time.NewTicker(r.opts.Refresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = r.fetchNow()
			}
		}
	}()
}
