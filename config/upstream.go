package config

import (
	"fmt"
	"slices"
	"time"

	"github.com/tokengate/tokengate/verify"
)

// Upstream credential modes (upstream_token.mode).
const (
	// UpstreamNone removes Authorization before the upstream (the default).
	UpstreamNone = "none"
	// UpstreamForward passes the client's own token on (token passthrough).
	UpstreamForward = "forward"
	// UpstreamAssertion sends a JWT signed by tokengate's assertion key.
	UpstreamAssertion = "assertion"
	// UpstreamExchange sends a token obtained by an RFC 8693 token exchange.
	UpstreamExchange = "exchange"
)

// Upstream credential defaults.
const (
	DefaultAssertionTTL       = 5 * time.Minute
	MinAssertionTTL           = 10 * time.Second
	MaxAssertionTTL           = 24 * time.Hour
	DefaultAssertionCacheSize = 100000
	DefaultExchangeTimeout    = 5 * time.Second
	DefaultExchangeClientAuth = verify.ClientAuthBasic
)

// Assertion is tokengate's own signing key for upstream assertions. Either
// KeyFile (with Kid) names one key, or Keys lists several for rotation: the
// first entry (the newest) signs, all are published.
type Assertion struct {
	Issuer  string         `koanf:"issuer" yaml:"issuer,omitempty"`
	KeyFile string         `koanf:"key_file" yaml:"key_file,omitempty"`
	Kid     string         `koanf:"kid" yaml:"kid,omitempty"`
	Keys    []AssertionKey `koanf:"keys" yaml:"keys,omitempty"`
	// CacheSize bounds the assertion cache (entries); 0 disables it. Nil
	// (unset) means DefaultAssertionCacheSize.
	CacheSize *int `koanf:"cache_size" yaml:"cache_size,omitempty"`
}

// AssertionKey is one signing key: an ES256 (P-256), EdDSA (Ed25519) or
// RS256 (RSA) private key in PEM, as "tokengate keys generate" writes it.
// An empty Kid means the key's RFC 7638 thumbprint.
type AssertionKey struct {
	KeyFile string `koanf:"key_file" yaml:"key_file"`
	Kid     string `koanf:"kid" yaml:"kid,omitempty"`
}

// Enabled reports whether the assertion block is set at all.
func (a Assertion) Enabled() bool {
	return a.Issuer != "" || a.KeyFile != "" || a.Kid != "" || len(a.Keys) > 0 || a.CacheSize != nil
}

// SigningKeys returns the configured keys, newest (the signing one) first:
// key_file/kid as a one-entry list, or keys.
func (a Assertion) SigningKeys() []AssertionKey {
	if a.KeyFile != "" {
		return []AssertionKey{{KeyFile: a.KeyFile, Kid: a.Kid}}
	}
	return a.Keys
}

// Cache returns the assertion cache size: CacheSize, or
// DefaultAssertionCacheSize when it is unset.
func (a Assertion) Cache() int {
	if a.CacheSize == nil {
		return DefaultAssertionCacheSize
	}
	return *a.CacheSize
}

// UpstreamToken is a route's upstream credential: what the upstream receives
// in Authorization instead of the client's token.
type UpstreamToken struct {
	Mode     string   `koanf:"mode" yaml:"mode,omitempty"`
	Audience string   `koanf:"audience" yaml:"audience,omitempty"`
	TTL      Duration `koanf:"ttl" yaml:"ttl,omitempty"`

	// exchange only
	TokenEndpoint     string   `koanf:"token_endpoint" yaml:"token_endpoint,omitempty"`
	ClientID          string   `koanf:"client_id" yaml:"client_id,omitempty"`
	ClientSecret      Secret   `koanf:"client_secret" yaml:"client_secret,omitempty"`
	ClientSecretFile  string   `koanf:"client_secret_file" yaml:"client_secret_file,omitempty"`
	ClientSecretEnv   string   `koanf:"client_secret_env" yaml:"client_secret_env,omitempty"`
	ClientAuth        string   `koanf:"client_auth" yaml:"client_auth,omitempty"`
	Scopes            []string `koanf:"scopes" yaml:"scopes,omitempty"`
	Timeout           Duration `koanf:"timeout" yaml:"timeout,omitempty"`
	AllowInsecureHTTP bool     `koanf:"allow_insecure_http" yaml:"allow_insecure_http,omitempty"`

	// fromAlias records that mode forward came from forward_authorization.
	fromAlias bool
}

// UpstreamMode is the route's effective upstream_token.mode: Mode, or for a
// Config built by hand without one, forward when ForwardAuthorization is set
// and none otherwise.
func (r Route) UpstreamMode() string {
	switch {
	case r.UpstreamToken.Mode != "":
		return r.UpstreamToken.Mode
	case r.ForwardAuthorization:
		return UpstreamForward
	}
	return UpstreamNone
}

// upstreamDefaults fills the upstream_token modes and defaults. It keeps
// forward_authorization and mode forward in step, so either spelling works.
func (c *Config) upstreamDefaults() {
	for i := range c.Routes {
		r := &c.Routes[i]
		u := &r.UpstreamToken
		switch {
		case u.Mode == "" && r.ForwardAuthorization:
			u.Mode, u.fromAlias = UpstreamForward, true
		case u.Mode == "":
			u.Mode = UpstreamNone
		case u.Mode == UpstreamForward:
			r.ForwardAuthorization = true
		}
		switch u.Mode {
		case UpstreamAssertion:
			if u.TTL == 0 {
				u.TTL = Duration(DefaultAssertionTTL)
			}
		case UpstreamExchange:
			switch u.ClientAuth {
			case "":
				u.ClientAuth = DefaultExchangeClientAuth
			case "client_secret_basic":
				u.ClientAuth = "basic"
			case "client_secret_post":
				u.ClientAuth = "post"
			}
			if u.Timeout == 0 {
				u.Timeout = Duration(DefaultExchangeTimeout)
			}
		}
	}
	if c.Assertion.Enabled() && c.Assertion.CacheSize == nil {
		size := DefaultAssertionCacheSize
		c.Assertion.CacheSize = &size
	}
}

// ExchangeIssuer returns the issuer a route's token endpoint is discovered
// from when upstream_token.token_endpoint is not set: the issuer of the
// first of the route's verifiers that has one. ok is false when none has.
func (c *Config) ExchangeIssuer(r Route) (issuer string, allowInsecure bool, ok bool) {
	for _, name := range r.Verifiers {
		vc, found := c.Verifiers[name]
		if found && vc.Issuer != "" && vc.Type != TypeStatic {
			return vc.Issuer, vc.AllowInsecureHTTP, true
		}
	}
	return "", false, false
}

func (v *validator) assertion(a Assertion) {
	if !a.Enabled() {
		return
	}
	if a.Issuer == "" {
		v.add("assertion.issuer", "is required")
	}
	switch {
	case a.KeyFile != "" && len(a.Keys) > 0:
		v.add("assertion.keys", "key_file and keys are exclusive: list every key under keys")
	case a.KeyFile == "" && len(a.Keys) == 0:
		v.add("assertion.key_file", "is required (or keys: a list of key_file and kid, the newest first)")
	case a.Kid != "" && a.KeyFile == "":
		v.add("assertion.kid", "requires key_file")
	}
	kids := map[string]int{}
	for i, k := range a.Keys {
		p := fmt.Sprintf("assertion.keys[%d]", i)
		if k.KeyFile == "" {
			v.add(p+".key_file", "is required")
		}
		if k.Kid == "" {
			continue
		}
		if j, dup := kids[k.Kid]; dup {
			v.add(p+".kid", fmt.Sprintf("duplicates assertion.keys[%d].kid %q", j, k.Kid))
			continue
		}
		kids[k.Kid] = i
	}
	if a.Cache() < 0 {
		v.add("assertion.cache_size", "must be 0 (disabled) or more")
	}
}

// exchangeOnly lists the keys that apply to mode exchange alone, with
// whether each is set.
func (u UpstreamToken) exchangeOnly() []string {
	var out []string
	for _, s := range []struct {
		key string
		set bool
	}{
		{"token_endpoint", u.TokenEndpoint != ""}, {"client_id", u.ClientID != ""},
		{"client_secret", u.ClientSecret != ""}, {"client_secret_file", u.ClientSecretFile != ""},
		{"client_secret_env", u.ClientSecretEnv != ""}, {"client_auth", u.ClientAuth != ""},
		{"scopes", len(u.Scopes) > 0}, {"timeout", u.Timeout != 0},
		{"allow_insecure_http", u.AllowInsecureHTTP},
	} {
		if s.set {
			out = append(out, s.key)
		}
	}
	return out
}

func (v *validator) upstreamToken(p string, r Route, c *Config) {
	u := r.UpstreamToken
	u.Mode = r.UpstreamMode()
	up := p + ".upstream_token"
	modes := []string{UpstreamNone, UpstreamForward, UpstreamAssertion, UpstreamExchange}
	if !slices.Contains(modes, u.Mode) {
		v.add(up+".mode", fmt.Sprintf("%q is not one of none, forward, assertion, exchange", u.Mode))
		return
	}
	if r.ForwardAuthorization && u.Mode != UpstreamForward {
		v.add(p+".forward_authorization", fmt.Sprintf("true means upstream_token.mode forward, which contradicts mode %s", u.Mode))
	}
	if r.AllowAnonymous && (u.Mode == UpstreamAssertion || u.Mode == UpstreamExchange) {
		v.add(up+".mode", fmt.Sprintf("%s needs a verified token, which an allow_anonymous route does not have", u.Mode))
	}
	if u.Mode != UpstreamAssertion && u.TTL != 0 {
		v.add(up+".ttl", "applies only to mode assertion")
	}
	if u.Mode != UpstreamExchange {
		for _, key := range u.exchangeOnly() {
			v.add(up+"."+key, "applies only to mode exchange")
		}
	}
	if (u.Mode == UpstreamNone || u.Mode == UpstreamForward) && u.Audience != "" {
		v.add(up+".audience", "applies only to modes assertion and exchange")
	}
	switch u.Mode {
	case UpstreamAssertion:
		if u.Audience == "" {
			v.add(up+".audience", "is required for mode assertion")
		}
		if u.TTL.D() < MinAssertionTTL || u.TTL.D() > MaxAssertionTTL {
			v.add(up+".ttl", "must be between 10s and 24h")
		}
		if !c.Assertion.Enabled() {
			v.add(up+".mode", "assertion requires the top-level assertion block (issuer and key_file)")
		}
	case UpstreamExchange:
		v.exchange(up, r, c)
	}
}

func (v *validator) exchange(up string, r Route, c *Config) {
	u := r.UpstreamToken
	if u.Audience == "" {
		v.add(up+".audience", "is required for mode exchange")
	}
	if u.TokenEndpoint != "" {
		v.remoteURL(up+".token_endpoint", u.TokenEndpoint, u.AllowInsecureHTTP)
	} else if iss, insecure, ok := c.ExchangeIssuer(r); !ok || !discoverable(iss, insecure || u.AllowInsecureHTTP) {
		v.add(up+".token_endpoint", "is required unless one of the route's verifiers has an https issuer to discover it from")
	}
	if u.ClientID == "" {
		v.add(up+".client_id", "is required for mode exchange")
	}
	v.oneSecret(up, "client_secret", u.ClientSecret, u.ClientSecretFile, u.ClientSecretEnv)
	if !slices.Contains([]string{verify.ClientAuthBasic, verify.ClientAuthPost}, u.ClientAuth) {
		v.add(up+".client_auth", "must be basic (client_secret_basic) or post (client_secret_post)")
	}
	if u.Timeout.D() < 100*time.Millisecond || u.Timeout.D() > time.Minute {
		v.add(up+".timeout", "must be between 100ms and 1m")
	}
	for i, sc := range u.Scopes {
		if !scopePattern.MatchString(sc) {
			v.add(fmt.Sprintf("%s.scopes[%d]", up, i), "must be one scope token: printable ASCII without spaces, '\"' or '\\'")
		}
	}
}

// Warnings returns what is valid but unwise, each with its key path:
// "config check" prints them and "serve" logs them. Today: routes that pass
// the client's token on, which the MCP specification forbids.
func (c *Config) Warnings() []Problem {
	var out []Problem
	for i, r := range c.Routes {
		if r.UpstreamMode() != UpstreamForward {
			continue
		}
		p := fmt.Sprintf("routes[%d].upstream_token.mode", i)
		if r.UpstreamToken.fromAlias || r.UpstreamToken.Mode == "" {
			p = fmt.Sprintf("routes[%d].forward_authorization", i)
		}
		out = append(out, Problem{Path: p, Msg: "forward passes the client's token to the upstream (token passthrough), " +
			"which the MCP specification forbids; use upstream_token.mode assertion or exchange"})
	}
	return out
}
