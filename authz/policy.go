// Package authz decides one request, whatever transport brought it: it
// picks the route, makes the route's verification call (verify.Chain) and
// returns a transport-neutral Decision: allow (with identity headers for
// the upstream), deny (with a standards-conformant challenge) or a
// document tokengate answers itself. Package server renders a Decision as
// an Envoy CheckResponse or a forward-auth HTTP answer.
package authz

import (
	"context"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/tokengate/tokengate/upstream"
	"github.com/tokengate/tokengate/verify"
)

// Identity headers set on allow and stripped from every request.
const (
	HeaderSub      = "x-auth-sub"
	HeaderIss      = "x-auth-iss"
	HeaderScopes   = "x-auth-scopes"
	HeaderClientID = "x-auth-client-id"
	HeaderVerifier = "x-auth-verifier"
)

// metadataHeaders are the headers of every RFC 9728 document: public, so
// any origin may read it.
var metadataHeaders = []Header{
	{"content-type", "application/json"},
	{"cache-control", "max-age=300"},
	{"access-control-allow-origin", "*"},
}

// RouteContextKey is the ext_authz per-route context extension that pins a
// route by name.
const RouteContextKey = "tokengate_route"

// WellKnownPRM is the RFC 9728 protected resource metadata path prefix.
const WellKnownPRM = "/.well-known/oauth-protected-resource"

// Policy is an immutable, compiled configuration: the ordered routes and
// the verifiers they use. A new Policy replaces an old one whole.
type Policy struct {
	routes    []*Route
	byName    map[string]*Route
	verifiers []verify.Verifier
	// metadata maps a well-known path to the route whose RFC 9728 document
	// it serves.
	metadata map[string]*Route
	// identityHeaders are every header name tokengate sets, stripped from
	// every request.
	identityHeaders []string
	// tokens remembers verified JWTs for every route's chain.
	tokens *verify.TokenCache
	// broader maps a scope to the scopes that imply it (scope_hierarchy).
	broader map[string][]string
	// upstream holds the assertion keys and every route's upstream
	// credential.
	upstream *upstream.Set
	// dpop checks DPoP proofs (nil: none configured).
	dpop *dpopSetup
}

// Upstream returns the upstream-credential side of the policy (the
// assertion JWKS).
func (p *Policy) Upstream() *upstream.Set { return p.upstream }

// Route is one compiled route.
type Route struct {
	Name string

	hosts      []string
	pathPrefix string
	pathExact  string
	methods    []string

	anonymous bool
	// chain is the route's verification call.
	chain        *verify.Chain
	required     []string
	resource     string
	authServers  []string
	claimHeaders []claimHeader
	forwardAuth  bool
	upstream     *upstream.Route // what the upstream receives in Authorization
	mcp          *mcpRules       // nil: no mcp block
	// Sender-constraint settings of the route.
	requireDPoP, requireMTLS, trustXFCC bool
	dpopAlgs                            string      // for the DPoP challenge's algs
	cors                                *corsPolicy // nil: no cors block

	// Precomputed response parts.
	metadataURL  string
	metadataJSON []byte
	scopeParam   string
	// strip are the headers removed on allow when nothing sets them, and
	// guard finds them (and the IdentityPrefix family) in any spelling.
	strip []string
	guard *HeaderGuard
}

type claimHeader struct {
	header, claim string
}

// Start starts the verifiers' background work (key refresh) until ctx ends.
func (p *Policy) Start(ctx context.Context) {
	for _, v := range p.verifiers {
		v.Start(ctx)
	}
}

// NotReady returns the names of the verifiers that cannot verify yet.
func (p *Policy) NotReady() []string {
	out := []string{}
	for _, v := range p.verifiers {
		if !v.Ready() {
			out = append(out, v.Name())
		}
	}
	return out
}

// Metadata returns the RFC 9728 document served at the well-known path p,
// if a route has one there.
func (p *Policy) Metadata(wellKnownPath string) ([]byte, bool) {
	r, ok := p.metadata[wellKnownPath]
	if !ok {
		return nil, false
	}
	return r.metadataJSON, true
}

// match returns the first route matching the request, or nil.
func (p *Policy) match(host, reqPath, method string) *Route {
	for _, r := range p.routes {
		if r.matches(host, reqPath, method) {
			return r
		}
	}
	return nil
}

func (r *Route) matches(host, reqPath, method string) bool {
	if r.pathExact != "" {
		if reqPath != r.pathExact {
			return false
		}
	} else if !strings.HasPrefix(reqPath, r.pathPrefix) {
		return false
	}
	if len(r.methods) > 0 && !contains(r.methods, method) {
		return false
	}
	if len(r.hosts) > 0 {
		ok := false
		for _, h := range r.hosts {
			if m, _ := path.Match(h, host); m {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// PathOnly drops the query string and fragment of a :path.
func PathOnly(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}

// metadataPath returns the RFC 9728 well-known path for a resource URL:
// the well-known prefix followed by the resource's path, without a
// trailing slash.
func metadataPath(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil {
		return "", err
	}
	return WellKnownPRM + strings.TrimSuffix(u.EscapedPath(), "/"), nil
}

// metadataURL returns the absolute URL of the resource's metadata document.
func metadataURL(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil {
		return "", err
	}
	p, err := metadataPath(resource)
	if err != nil {
		return "", err
	}
	return u.Scheme + "://" + u.Host + p, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// operationScopes returns the scopes a request with ops needs: the route's
// and every matching rule's, in order and once each. denied reports an
// operation that no rule names on a route with unlisted: deny.
func (r *Route) operationScopes(ops []Operation) (scopes []string, denied bool) {
	scopes = r.required
	for _, op := range ops {
		if op.Method == "" {
			continue // a client's response: the route's scopes
		}
		rule := r.mcp.rule(op)
		if rule == nil {
			if r.mcp.denyUnlisted {
				return nil, true
			}
			continue
		}
		for _, sc := range rule.scopes {
			if !contains(scopes, sc) {
				if len(scopes) == len(r.required) {
					scopes = append([]string(nil), r.required...)
				}
				scopes = append(scopes, sc)
			}
		}
	}
	return scopes, false
}

// broaderScopes inverts scope_hierarchy: for each scope, every scope that
// implies it, directly or through others.
func broaderScopes(h map[string][]string) map[string][]string {
	if len(h) == 0 {
		return nil
	}
	out := map[string][]string{}
	var walk func(broad, at string, seen map[string]bool)
	walk = func(broad, at string, seen map[string]bool) {
		for _, narrow := range h[at] {
			if seen[narrow] {
				continue
			}
			seen[narrow] = true
			out[narrow] = append(out[narrow], broad)
			walk(broad, narrow, seen)
		}
	}
	for _, broad := range sortedKeys(h) {
		walk(broad, broad, map[string]bool{broad: true})
	}
	return out
}
