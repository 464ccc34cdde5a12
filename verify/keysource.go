package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
)

// MaxResponseBody caps every identity-provider response tokengate reads.
const MaxResponseBody = 1 << 20

// staticKeys is a key set fixed at start-up.
type staticKeys struct{ set *keySet }

func (s staticKeys) current() *keySet                         { return s.set }
func (s staticKeys) refetch(context.Context) (*keySet, error) { return s.set, nil }
func (s staticKeys) ready() bool                              { return true }
func (s staticKeys) start(context.Context)                    {}

// RemoteOptions tunes a remote JWKS.
type RemoteOptions struct {
	// Refresh is the background refresh period (default 15m).
	Refresh time.Duration
	// MinRefetchInterval bounds early refetches after an unknown kid
	// (default 10s).
	MinRefetchInterval time.Duration
	// Timeout bounds one fetch (default 5s).
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
	name  string
	url   string
	allow []jwa.SignatureAlgorithm
	opts  RemoteOptions
	log   *slog.Logger

	set atomic.Pointer[keySet]

	mu          sync.Mutex
	inflight    *fetchCall
	lastAttempt time.Time
	lastErr     error
}

type fetchCall struct {
	done chan struct{}
	set  *keySet
	err  error
}

func newRemoteKeys(name, rawURL string, allow []jwa.SignatureAlgorithm, o RemoteOptions) (*remoteKeys, error) {
	if err := CheckURL(rawURL, o.AllowInsecureHTTP); err != nil {
		return nil, err
	}
	if o.Refresh <= 0 {
		o.Refresh = 15 * time.Minute
	}
	if o.MinRefetchInterval <= 0 {
		o.MinRefetchInterval = 10 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Client == nil {
		o.Client = newHTTPClient(o.Timeout)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &remoteKeys{name: name, url: rawURL, allow: allow, opts: o, log: o.Logger}, nil
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
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newHTTPClient returns a client for identity-provider calls: bounded time,
// few redirects, never from https down to http.
func newHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
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
// early fetch per MinRefetchInterval. Within the interval it answers with the
// keys it has (or the last error when it has none).
func (r *remoteKeys) refetch(ctx context.Context) (*keySet, error) {
	r.mu.Lock()
	c := r.inflight
	if c == nil {
		cur := r.set.Load()
		if time.Since(r.lastAttempt) < r.opts.MinRefetchInterval {
			err := r.lastErr
			r.mu.Unlock()
			if cur != nil {
				return cur, nil
			}
			if err == nil {
				err = errors.New("JWKS not loaded yet")
			}
			return nil, err
		}
		c = r.startFetchLocked()
	}
	r.mu.Unlock()
	select {
	case <-c.done:
		return c.set, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// startFetchLocked starts one fetch detached from any request, so that a
// caller giving up does not abort it for the others. r.mu must be held.
func (r *remoteKeys) startFetchLocked() *fetchCall {
	c := &fetchCall{done: make(chan struct{})}
	r.inflight = c
	r.lastAttempt = time.Now()
	go func() {
		set, err := r.fetch()
		r.mu.Lock()
		r.inflight = nil
		r.lastErr = err
		r.mu.Unlock()
		if err != nil {
			set = r.set.Load()
			if set != nil {
				err = nil // keep answering with the last good keys
			}
		}
		c.set, c.err = set, err
		close(c.done)
	}()
	return c
}

// fetchNow runs a fetch (sharing one in flight) regardless of the rate limit.
func (r *remoteKeys) fetchNow() error {
	r.mu.Lock()
	c := r.inflight
	if c == nil {
		c = r.startFetchLocked()
	}
	r.mu.Unlock()
	<-c.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

func (r *remoteKeys) fetch() (*keySet, error) {
	set, err := r.download()
	result := "success"
	if err != nil {
		result = "failure"
		r.log.Warn("JWKS fetch failed", "verifier", r.name, "url", r.url, "error", err)
	} else {
		r.set.Store(set)
	}
	if r.opts.OnFetch != nil {
		n := 0
		if cur := r.set.Load(); cur != nil {
			n = len(cur.all)
		}
		r.opts.OnFetch(r.name, result, n)
	}
	return set, err
}

func (r *remoteKeys) download() (*keySet, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
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
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading JWKS: %w", err)
	}
	if len(body) > MaxResponseBody {
		return nil, fmt.Errorf("JWKS larger than %d bytes", MaxResponseBody)
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
