package config

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tokengate/tokengate/jose"
	"github.com/tokengate/tokengate/verify"
)

var (
	namePattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	headerPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	// scopePattern is an RFC 6749 scope-token, so that the WWW-Authenticate
	// scope parameter stays well-formed.
	scopePattern = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)
)

// reservedHeaders cannot be claim_headers: the identity headers are set
// from the verified token itself, and the others would change how the
// request is routed, framed or authenticated upstream.
var reservedHeaders = []string{
	"x-auth-sub", "x-auth-iss", "x-auth-scopes", "x-auth-client-id", "x-auth-verifier",
	"x-auth-mcp-method", "x-auth-mcp-name", "authorization", "proxy-authorization", "host", "content-length", "transfer-encoding",
	"connection", "keep-alive", "te", "trailer", "upgrade", "proxy-connection",
}

// Validate returns every problem in c, each with its key path. Loading
// validates already; call it after changing a Config by hand.
func (c *Config) Validate() []Problem {
	var v validator
	v.listen("server.grpc_listen", c.Server.GRPCListen)
	v.listen("server.http_listen", c.Server.HTTPListen)
	if c.Server.ClockSkew < 0 || c.Server.ClockSkew.D() > 10*time.Minute {
		v.add("server.clock_skew", "must be between 0s and 10m")
	}
	if c.Server.TokenCache() < 0 {
		v.add("server.token_cache_size", "must be 0 (disabled) or more")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		v.add("log.level", "must be one of debug, info, warn, error")
	}
	if !slices.Contains([]string{"json", "text"}, c.Log.Format) {
		v.add("log.format", "must be json or text")
	}
	names := make([]string, 0, len(c.Verifiers))
	for name := range c.Verifiers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		vc := c.Verifiers[name]
		p := "verifiers." + name
		if !namePattern.MatchString(name) {
			v.add(p, "name may hold only letters, digits, '_' and '-'")
		}
		v.verifier(p, vc)
	}
	if len(c.Routes) == 0 {
		v.add("routes", "at least one route is required")
	}
	seen := map[string]bool{}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		if r.Name == "" {
			v.add(p+".name", "is required")
		} else if seen[r.Name] {
			v.add(p+".name", fmt.Sprintf("duplicate route name %q", r.Name))
		}
		seen[r.Name] = true
		v.route(p, r, c.Verifiers)
		v.upstreamToken(p, r, c)
	}
	v.scopeHierarchy(c.ScopeHierarchy)
	v.dpop(c.DPoP)
	v.assertion(c.Assertion)
	return v.probs
}

type validator struct{ probs []Problem }

func (v *validator) add(path, msg string) { v.probs = append(v.probs, Problem{path, msg}) }

func (v *validator) listen(path, addr string) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		v.add(path, "must be host:port (for example :9191 or 127.0.0.1:9191)")
	}
}

func (v *validator) remoteURL(path, raw string, allowInsecure bool) {
	if err := verify.CheckURL(raw, allowInsecure); err != nil {
		v.add(path, err.Error())
	}
}

func (v *validator) verifier(p string, vc Verifier) {
	switch vc.Type {
	case TypeJWT:
		if vc.Issuer == "" && len(vc.Issuers) == 0 {
			v.add(p+".issuer", "is required")
		}
		v.shape(p, vc)
		sources := vc.keySources()
		switch {
		case len(sources) > 1:
			v.add(p+"."+sources[1], "only one key source may be set, found "+strings.Join(sources, ", "))
		case len(sources) == 0 && vc.Issuer != "" && len(vc.Issuers) == 0:
			// The jwks_uri is discovered from the issuer's metadata.
			if !discoverable(vc.Issuer, vc.AllowInsecureHTTP) {
				v.add(p+".jwks_uri", "a key source is required (jwks_uri, jwks_file, public_key, public_key_file, "+
					"hmac_secret, hmac_secret_file or hmac_secret_env) unless issuer is an https URL to discover jwks_uri from")
			}
		case len(sources) == 0 && len(vc.Issuers) > 0:
			if !slices.ContainsFunc(vc.Issuers, func(iss string) bool { return discoverable(iss, vc.AllowInsecureHTTP) }) {
				v.add(p+".jwks_uri", "a key source is required (jwks_uri, jwks_file, public_key, public_key_file, "+
					"hmac_secret, hmac_secret_file or hmac_secret_env) unless one of issuers is an https URL to discover jwks_uri from")
			}
		}
		if vc.remoteKeys() {
			if vc.JWKSURI != "" {
				v.remoteURL(p+".jwks_uri", vc.JWKSURI, vc.AllowInsecureHTTP)
			}
			if vc.JWKSRefresh.D() < time.Second {
				v.add(p+".jwks_refresh", "must be at least 1s")
			}
			if vc.JWKSMinRefetchInterval < 0 {
				v.add(p+".jwks_min_refetch_interval", "must not be negative")
			}
		}
		for i, a := range vc.Algorithms {
			if _, ok := jose.Lookup(a); !ok {
				v.add(fmt.Sprintf("%s.algorithms[%d]", p, i), fmt.Sprintf("%q is not one of %s", a, jose.Join(jose.Supported(), " ")))
			}
		}
		for i, a := range vc.Audiences {
			if a == "" {
				v.add(fmt.Sprintf("%s.audiences[%d]", p, i), "must not be empty")
			}
		}
	case TypeIntrospection:
		v.jwtOnly(p, vc)
		if vc.IntrospectionURL == "" {
			v.add(p+".introspection_url", "is required")
		} else {
			v.remoteURL(p+".introspection_url", vc.IntrospectionURL, vc.AllowInsecureHTTP)
		}
		v.oneSecret(p, "client_secret", vc.ClientSecret, vc.ClientSecretFile, vc.ClientSecretEnv)
		if !slices.Contains([]string{verify.ClientAuthBasic, verify.ClientAuthPost}, vc.ClientAuth) {
			v.add(p+".client_auth", "must be basic or post")
		}
	case TypeStatic:
		v.jwtOnly(p, vc)
		if len(vc.Tokens) == 0 {
			v.add(p+".tokens", "at least one token is required")
		}
	case "":
		v.add(p+".type", "is required (jwt, introspection or static)")
	default:
		v.add(p+".type", fmt.Sprintf("%q is not one of jwt, introspection, static", vc.Type))
	}
}

// discoverable reports whether issuer is a URL its metadata (and so its
// jwks_uri) can be fetched from: absolute, without query or fragment, and
// https unless on a loopback host or allow_insecure_http is set.
func discoverable(issuer string, allowInsecure bool) bool {
	u, err := url.Parse(issuer)
	return err == nil && u.RawQuery == "" && u.Fragment == "" && verify.CheckURL(issuer, allowInsecure) == nil
}

// keySources lists the jwt key source keys that are set, sorted.
func (vc Verifier) keySources() []string {
	var out []string
	for _, s := range []struct {
		key string
		set bool
	}{
		{"hmac_secret", vc.HMACSecret != ""}, {"hmac_secret_env", vc.HMACSecretEnv != ""},
		{"hmac_secret_file", vc.HMACSecretFile != ""}, {"jwks_file", vc.JWKSFile != ""},
		{"jwks_uri", vc.JWKSURI != ""}, {"public_key", vc.PublicKey != ""},
		{"public_key_file", vc.PublicKeyFile != ""},
	} {
		if s.set {
			out = append(out, s.key)
		}
	}
	return out
}

// remoteKeys reports whether a jwt verifier fetches its keys: from jwks_uri,
// or from the jwks_uri discovered from its issuer when no source is set.
func (vc Verifier) remoteKeys() bool {
	src := vc.keySources()
	return len(src) == 0 || (len(src) == 1 && src[0] == "jwks_uri")
}

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}

func (v *validator) route(p string, r Route, verifiers map[string]Verifier) {
	m := r.Match
	switch {
	case m.PathPrefix != "" && m.PathExact != "":
		v.add(p+".match", "path_prefix and path_exact are exclusive")
	case m.PathPrefix == "" && m.PathExact == "":
		v.add(p+".match.path_prefix", "path_prefix or path_exact is required (use \"/\" for everything)")
	case m.PathPrefix != "" && !strings.HasPrefix(m.PathPrefix, "/"):
		v.add(p+".match.path_prefix", "must start with /")
	case m.PathExact != "" && !strings.HasPrefix(m.PathExact, "/"):
		v.add(p+".match.path_exact", "must start with /")
	}
	for i, h := range m.Hosts {
		if _, err := path.Match(h, ""); err != nil || h == "" || strings.ContainsAny(h, " /") ||
			(strings.Contains(h, ":") && net.ParseIP(h) == nil) {
			v.add(fmt.Sprintf("%s.match.hosts[%d]", p, i), "must be a host name or glob, without port")
		}
	}
	for i, meth := range m.Methods {
		if !slices.Contains(httpMethods, meth) {
			v.add(fmt.Sprintf("%s.match.methods[%d]", p, i), fmt.Sprintf("%q is not an upper-case HTTP method", meth))
		}
	}
	if r.Resource != "" {
		if u, err := url.Parse(r.Resource); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.Fragment != "" {
			v.add(p+".resource", "must be an absolute http(s) URL without fragment")
		}
	}
	if r.ResourceName != "" && r.Resource == "" {
		v.add(p+".resource_name", "requires resource: the name is published in the resource's metadata document")
	}
	for i, as := range r.AuthorizationServers {
		if u, err := url.Parse(as); err != nil || u.Host == "" {
			v.add(fmt.Sprintf("%s.authorization_servers[%d]", p, i), "must be an absolute URL")
		}
	}
	for i, sc := range r.RequiredScopes {
		v.scope(fmt.Sprintf("%s.required_scopes[%d]", p, i), sc)
	}
	v.mcp(p, r)
	v.cors(p, r.CORS)
	headers := make([]string, 0, len(r.ClaimHeaders))
	for h := range r.ClaimHeaders {
		headers = append(headers, h)
	}
	slices.Sort(headers)
	for _, h := range headers {
		switch {
		case !headerPattern.MatchString(h):
			v.add(p+".claim_headers."+h, "header name must be lower-case letters, digits and '-'")
		case slices.Contains(reservedHeaders, h):
			v.add(p+".claim_headers."+h, "is reserved: tokengate sets x-auth-sub, x-auth-iss, x-auth-scopes, x-auth-client-id and x-auth-verifier itself, and never sets authorization, host or hop-by-hop headers")
		}
		if r.ClaimHeaders[h] == "" {
			v.add(p+".claim_headers."+h, "must name a claim")
		}
	}
	if r.AllowAnonymous {
		if len(r.Verifiers) > 0 {
			v.add(p+".verifiers", "must be empty on an allow_anonymous route")
		}
		return
	}
	if len(r.Verifiers) == 0 {
		v.add(p+".verifiers", "at least one verifier is required (or allow_anonymous: true)")
	}
	for i, name := range r.Verifiers {
		vc, ok := verifiers[name]
		if !ok {
			v.add(fmt.Sprintf("%s.verifiers[%d]", p, i), fmt.Sprintf("unknown verifier %q", name))
			continue
		}
		if vc.Type == TypeJWT && len(vc.Audiences) == 0 && r.Resource == "" {
			v.add(p+".resource", fmt.Sprintf("required because verifier %q sets no audiences", name))
		}
	}
}
