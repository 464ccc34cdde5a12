package authz

import (
	"slices"
	"strconv"
	"strings"

	"github.com/tokengate/tokengate/config"
)

// Browser clients (contract section 10): CORS preflights answered without
// a token, CORS headers on every answer to an allowed origin, and the
// Origin check of MCP routes.

// corsPolicy is a route's compiled cors block.
type corsPolicy struct {
	any     bool // allowed_origins holds "*"
	origins []string
	maxAge  string // seconds, for Access-Control-Max-Age
	methods string // Access-Control-Allow-Methods
}

// corsAllowHeaders are the request headers a browser MCP client may send
// (Mcp-Param-* headers it asks for are allowed too).
const corsAllowHeaders = "Authorization, Content-Type, Accept, MCP-Protocol-Version, Mcp-Session-Id, Mcp-Method, Mcp-Name, Last-Event-ID, DPoP"

// corsExposeHeaders are the response headers a browser client must read.
const corsExposeHeaders = "WWW-Authenticate, Mcp-Session-Id, DPoP-Nonce"

func compileCORS(c *config.CORS, methods []string) *corsPolicy {
	if c == nil {
		return nil
	}
	p := &corsPolicy{
		any:     slices.Contains(c.AllowedOrigins, "*"),
		origins: c.AllowedOrigins,
		maxAge:  strconv.Itoa(int(c.MaxAge.D().Seconds())),
		methods: "GET, POST, DELETE, OPTIONS",
	}
	if len(methods) > 0 {
		p.methods = strings.Join(append(slices.Clone(methods), "OPTIONS"), ", ")
	}
	return p
}

// allows reports whether origin may read answers.
func (c *corsPolicy) allows(origin string) bool {
	return c != nil && origin != "" && (c.any || slices.Contains(c.origins, origin))
}

// preflight reports whether req is a CORS preflight.
func preflight(req *Request, origin string) bool {
	return req.Method == "OPTIONS" && origin != "" && req.Headers.Get("access-control-request-method") != ""
}

// sameOrigin reports whether origin is the request's own scheme://authority.
func sameOrigin(origin string, req *Request) bool {
	scheme, rest, ok := strings.Cut(origin, "://")
	if !ok || !strings.EqualFold(scheme, req.Scheme) {
		return false
	}
	host := strings.ToLower(req.Host)
	rest = strings.ToLower(rest)
	if rest == host {
		return true
	}
	// The default port may be written or not, on either side.
	def := ":80"
	if strings.EqualFold(scheme, "https") {
		def = ":443"
	}
	return rest+def == host || rest == host+def
}

// preflightHeaders are the headers of a 204 preflight answer for origin.
func (c *corsPolicy) preflightHeaders(origin string, req *Request) []Header {
	allow := corsAllowHeaders
	for h := range strings.SplitSeq(req.Headers.Get("access-control-request-headers"), ",") {
		h = strings.TrimSpace(h)
		if len(h) > len("mcp-param-") && strings.EqualFold(h[:len("mcp-param-")], "mcp-param-") && validToken(h) {
			allow += ", " + h
		}
	}
	return []Header{
		{"access-control-allow-origin", origin},
		{"access-control-allow-methods", c.methods},
		{"access-control-allow-headers", allow},
		{"access-control-max-age", c.maxAge},
		{"vary", "Origin"},
	}
}

// publicPreflight is the preflight answer of an RFC 9728 document.
func publicPreflight() []Header {
	return []Header{
		{"access-control-allow-origin", "*"},
		{"access-control-allow-methods", "GET, OPTIONS"},
		{"access-control-allow-headers", "MCP-Protocol-Version, Accept"},
		{"access-control-max-age", "600"},
	}
}

// appendCORS appends the CORS headers of an answer to an allowed origin.
func appendCORS(dst []Header, origin string) []Header {
	if origin == "" {
		return dst
	}
	return append(dst,
		Header{"access-control-allow-origin", origin},
		Header{"vary", "Origin"},
		Header{"access-control-expose-headers", corsExposeHeaders})
}

// validToken reports whether s is an HTTP token (a header name).
func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}
