package authz

// HeaderGuard decides which request headers a client may not send because
// an upstream could take them for tokengate's: every name starting with
// IdentityPrefix, and the exact names it was built with (the names
// tokengate sets, a route's claim_headers, authorization and
// proxy-authorization unless the route forwards credentials). Names are
// compared after folding ASCII case and mapping "_" to "-", since
// WSGI/CGI-style upstreams read x_auth_sub and X-Auth-Sub as one variable
// (issue 10, finding 2). A HeaderGuard is immutable and safe for concurrent
// use.
type HeaderGuard struct {
	exact  map[string]struct{} // canonical names
	maxLen int                 // the longest of them
}

// NewHeaderGuard builds a guard for the exact names (any spelling); the
// IdentityPrefix family is always protected.
func NewHeaderGuard(names ...string) *HeaderGuard {
	g := &HeaderGuard{exact: make(map[string]struct{}, len(names))}
	for _, n := range names {
		b := make([]byte, len(n))
		canonicalHeader(b, n)
		g.exact[string(b)] = struct{}{}
		g.maxLen = max(g.maxLen, len(n))
	}
	return g
}

// canonicalHeader writes name with ASCII letters lower-cased and "_" as "-"
// to dst, which is at least as long.
func canonicalHeader(dst []byte, name string) {
	for i := 0; i < len(name); i++ {
		dst[i] = foldHeaderByte(name[i])
	}
}

func foldHeaderByte(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + ('a' - 'A')
	case c == '_':
		return '-'
	}
	return c
}

// hasIdentityPrefix reports whether name starts with IdentityPrefix after
// folding.
func hasIdentityPrefix(name string) bool {
	if len(name) < len(IdentityPrefix) {
		return false
	}
	for i := 0; i < len(IdentityPrefix); i++ {
		if foldHeaderByte(name[i]) != IdentityPrefix[i] {
			return false
		}
	}
	return true
}

// Protected reports whether a request header called name must not reach
// the upstream from the client. It does not allocate for names of up to
// 128 bytes.
func (g *HeaderGuard) Protected(name string) bool {
	if hasIdentityPrefix(name) {
		return true
	}
	if len(name) > g.maxLen {
		return false
	}
	var buf [128]byte
	b := buf[:]
	if len(name) > len(buf) {
		b = make([]byte, len(name))
	}
	canonicalHeader(b, name)
	_, ok := g.exact[string(b[:len(name)])]
	return ok
}

// removalsInline is how many names AppendRemovals compares linearly before
// it indexes them in a map.
const removalsInline = 16

// AppendRemovals appends to dst the request headers of req that Protected
// refuses, each distinct spelling once, lower-cased (Envoy removes headers
// by their lower-case name): x_auth_sub and X_Auth_Sub give x_auth_sub
// once, beside x-auth-sub. It reads the names of req's map and list. A
// name already in dst, or set by tokengate (a Name in set: the proxy
// overwrites it, and removing it too could drop tokengate's value), is not
// appended. It runs in time linear in the number of request headers (issue
// 10, finding 7).
func (g *HeaderGuard) AppendRemovals(dst []string, req *Headers, set []Header) []string {
	if req == nil {
		return dst
	}
	r := removals{g: g, dst: dst, set: set, hint: len(req.Map) + len(req.List)}
	for name := range req.Map {
		r.consider(name)
	}
	for _, f := range req.List {
		r.consider(f.Name)
	}
	return r.dst
}

// removals is one AppendRemovals call's state.
type removals struct {
	g    *HeaderGuard
	dst  []string
	set  []Header
	seen map[string]struct{} // dst's names, once there are many
	hint int                 // the number of request headers
}

func (r *removals) consider(name string) {
	if !r.g.Protected(name) {
		return
	}
	name = lowerASCII(name)
	if isSet(r.set, name) {
		return
	}
	if r.seen == nil {
		for _, d := range r.dst {
			if d == name {
				return
			}
		}
		if len(r.dst) < removalsInline {
			r.dst = append(r.dst, name)
			return
		}
		r.seen = make(map[string]struct{}, max(4*removalsInline, r.hint))
		for _, d := range r.dst {
			r.seen[d] = struct{}{}
		}
	}
	if _, dup := r.seen[name]; dup {
		return
	}
	r.seen[name] = struct{}{}
	r.dst = append(r.dst, name)
}

// lowerASCII lower-cases ASCII letters, allocating only if there are any
// upper-case ones.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + ('a' - 'A')
				}
			}
			return string(b)
		}
	}
	return s
}
