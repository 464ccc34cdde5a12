package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// MCP is a route's MCP block: per-operation scopes (contract section 9).
// Its presence also turns on the Origin check of section 10.
type MCP struct {
	Operations []Operation `koanf:"operations" yaml:"operations,omitempty"`
	// Unlisted is "allow" (the default: route scopes only) or "deny" (403
	// for any method no rule names).
	Unlisted string `koanf:"unlisted" yaml:"unlisted,omitempty"`
	// Body is "auto" (the default: read the JSON-RPC message Envoy
	// forwards) or "never".
	Body string `koanf:"body" yaml:"body,omitempty"`
}

// Operation is one rule: the scopes a JSON-RPC operation needs in addition
// to the route's required_scopes. First match wins.
type Operation struct {
	// Method is a JSON-RPC method, exact or with a "/*" suffix glob.
	Method string `koanf:"method" yaml:"method"`
	// Name, if set, is a glob ("*" = any run of characters) on params.name
	// (tools/call, prompts/get) or params.uri (resources/read, ...).
	Name   *string  `koanf:"name" yaml:"name,omitempty"`
	Scopes []string `koanf:"scopes" yaml:"scopes,omitempty"`
}

// CORS lets browser clients call a route (contract section 10).
type CORS struct {
	// AllowedOrigins are exact origins (scheme://host[:port]) or "*".
	AllowedOrigins []string `koanf:"allowed_origins" yaml:"allowed_origins"`
	// MaxAge is how long a browser may cache a preflight answer (default 10m).
	MaxAge Duration `koanf:"max_age" yaml:"max_age,omitempty"`
}

// Values of MCP.Unlisted and MCP.Body.
const (
	UnlistedAllow = "allow"
	UnlistedDeny  = "deny"
	BodyAuto      = "auto"
	BodyNever     = "never"
)

// DefaultCORSMaxAge is CORS.MaxAge when unset.
const DefaultCORSMaxAge = Duration(10 * time.Minute)

// OfflineAccess is never a required scope and never named in a challenge
// (MCP 2026-07-28: a refresh-token scope says nothing about access).
const OfflineAccess = "offline_access"

// methodPattern is a JSON-RPC method name (MCP's are "a/b" paths of
// identifiers), optionally ending in the "/*" glob.
var methodPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*(/[A-Za-z_][A-Za-z0-9_.-]*)*(/\*)?$`)

func (v *validator) mcp(p string, r Route) {
	m := r.MCP
	if m == nil {
		return
	}
	p += ".mcp"
	if r.AllowAnonymous && len(m.Operations) > 0 {
		v.add(p+".operations", "an allow_anonymous route checks no scopes: operation rules need verifiers")
	}
	if !slices.Contains([]string{"", UnlistedAllow, UnlistedDeny}, m.Unlisted) {
		v.add(p+".unlisted", "must be allow or deny")
	}
	if !slices.Contains([]string{"", BodyAuto, BodyNever}, m.Body) {
		v.add(p+".body", "must be auto or never")
	}
	for i, op := range m.Operations {
		q := fmt.Sprintf("%s.operations[%d]", p, i)
		switch {
		case op.Method == "":
			v.add(q+".method", "is required (a JSON-RPC method such as tools/call, or a glob such as prompts/*)")
		case !methodPattern.MatchString(op.Method):
			v.add(q+".method", fmt.Sprintf("%q is not a JSON-RPC method name or a method/* glob", op.Method))
		}
		if op.Name != nil && strings.TrimSpace(*op.Name) == "" {
			v.add(q+".name", "must not be empty (omit it to match every name)")
		}
		for j, sc := range op.Scopes {
			v.scope(fmt.Sprintf("%s.scopes[%d]", q, j), sc)
		}
	}
}

// scope checks one scope that a request may be required to hold.
func (v *validator) scope(path, sc string) {
	switch {
	case !scopePattern.MatchString(sc):
		v.add(path, "must be one scope token: printable ASCII without spaces, '\"' or '\\'")
	case sc == OfflineAccess:
		v.add(path, "offline_access is a refresh-token scope and never a required scope")
	}
}

func (v *validator) cors(p string, c *CORS) {
	if c == nil {
		return
	}
	p += ".cors"
	if len(c.AllowedOrigins) == 0 {
		v.add(p+".allowed_origins", "at least one origin (or \"*\") is required")
	}
	for i, o := range c.AllowedOrigins {
		if o != "*" && !validOrigin(o) {
			v.add(fmt.Sprintf("%s.allowed_origins[%d]", p, i), fmt.Sprintf("%q is not an origin: scheme://host[:port], lower case, without path", o))
		}
	}
	if c.MaxAge < 0 {
		v.add(p+".max_age", "must not be negative")
	}
}

// validOrigin reports whether o is a serialized origin as browsers send it.
func validOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Path == "" &&
		u.RawQuery == "" && u.Fragment == "" && u.User == nil && o == strings.ToLower(o) && !strings.HasSuffix(o, "/")
}

// scopeHierarchy checks scope_hierarchy: scope tokens only, and no cycle.
func (v *validator) scopeHierarchy(h map[string][]string) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := "scope_hierarchy." + k
		if !scopePattern.MatchString(k) {
			v.add(p, "must be one scope token")
		}
		for i, n := range h[k] {
			if !scopePattern.MatchString(n) {
				v.add(fmt.Sprintf("%s[%d]", p, i), "must be one scope token")
			}
		}
		if cycle := hierarchyCycle(h, k); cycle != nil {
			v.add(p, "cycle: "+strings.Join(cycle, " -> "))
		}
	}
}

// hierarchyCycle returns a path from start back to start, or nil.
func hierarchyCycle(h map[string][]string, start string) []string {
	var walk func(at string, path []string, seen map[string]bool) []string
	walk = func(at string, path []string, seen map[string]bool) []string {
		for _, n := range h[at] {
			if n == start {
				return append(path, n)
			}
			if !seen[n] {
				seen[n] = true
				if c := walk(n, append(path, n), seen); c != nil {
					return c
				}
			}
		}
		return nil
	}
	return walk(start, []string{start}, map[string]bool{})
}

// applyMCPDefaults fills the unset values of the route's mcp and cors
// blocks.
func (r *Route) applyMCPDefaults() {
	if r.MCP != nil {
		if r.MCP.Unlisted == "" {
			r.MCP.Unlisted = UnlistedAllow
		}
		if r.MCP.Body == "" {
			r.MCP.Body = BodyAuto
		}
	}
	if r.CORS != nil && r.CORS.MaxAge == 0 {
		r.CORS.MaxAge = DefaultCORSMaxAge
	}
}
