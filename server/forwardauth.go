package server

import (
	"net/http"
	"slices"
	"strings"

	"github.com/tokengate/tokengate/authz"
	"github.com/tokengate/tokengate/reason"
)

// ForwardAuthPrefix is where the HTTP port answers forward-auth requests:
// Envoy's ext_authz http_service (path_prefix), Traefik forwardAuth, Caddy
// forward_auth and nginx auth_request. See docs/forward-auth.md.
const ForwardAuthPrefix = "/authz"

// Headers of the forward-auth conventions (canonical form).
const (
	hdrForwardedMethod = "X-Forwarded-Method"
	hdrForwardedURI    = "X-Forwarded-Uri"
	hdrForwardedHost   = "X-Forwarded-Host"
	hdrForwardedProto  = "X-Forwarded-Proto"
	hdrOriginalMethod  = "X-Original-Method"
	hdrOriginalURI     = "X-Original-Uri"
)

// HeaderRemove is the response header that lists, on allow, the request
// headers the gateway must remove before the upstream. Envoy's http_service
// applies it; other gateways need their own configuration.
const HeaderRemove = "x-envoy-auth-headers-to-remove"

// hopByHop are the headers that describe one connection, not the request.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// handleForwardAuth mounts the forward-auth handler on ForwardAuthPrefix
// (any method: Envoy's http_service keeps the original one).
func (s *Server) handleForwardAuth(mux *http.ServeMux) {
	h := s.forwardAuth()
	mux.Handle(ForwardAuthPrefix, h)
	mux.Handle(ForwardAuthPrefix+"/", h)
}

// forwardAuth answers forward-auth requests with the decisions the gRPC
// port makes. The request body is never read.
func (s *Server) forwardAuth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, code := requestFrom(r)
		if code != "" {
			s.log.Info("forward-auth request refused", "code", string(code))
			writeRefusal(w, code)
			return
		}
		d := s.svc.Decide(r.Context(), req)
		writeDecision(w, &d, &req.Headers)
	})
}

// requestFrom rebuilds the original request from a forward-auth
// request. First match wins:
//
//  1. Envoy http_service: the path is ForwardAuthPrefix + the original path
//     (with its query); method and Host are the original ones.
//  2. Traefik forwardAuth / Caddy forward_auth: X-Forwarded-Method,
//     X-Forwarded-Uri, X-Forwarded-Host, X-Forwarded-Proto.
//  3. nginx auth_request: X-Original-URI, X-Original-Method (else the
//     request's method), X-Forwarded-Host (else Host).
//
// A request must speak one convention unambiguously: headers of 2 and 3
// that disagree, or either on a request of 1, are refused, since one of them
// came from the client. The host (Host, or X-Forwarded-Host: one value, set
// by the gateway, not a list) must pass authz.ParseAuthority. The path must be normalized (see normalizedPath):
// the gateway forwards it as it is. The reason is empty on success.
func requestFrom(r *http.Request) (*authz.Request, reason.Code) {
	fwdURI, ok1 := single(r.Header, hdrForwardedURI)
	origURI, ok2 := single(r.Header, hdrOriginalURI)
	fwdMethod, ok3 := single(r.Header, hdrForwardedMethod)
	origMethod, ok4 := single(r.Header, hdrOriginalMethod)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil, reason.ForwardedHeadersConflict
	}

	method, host, uri := r.Method, r.Host, ""
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	escaped := r.URL.EscapedPath()
	if rest, envoyStyle := strings.CutPrefix(escaped, ForwardAuthPrefix+"/"); envoyStyle {
		if fwdURI != "" || origURI != "" || fwdMethod != "" || origMethod != "" {
			return nil, reason.ForwardedHeadersConflict
		}
		uri = "/" + rest
		if r.URL.RawQuery != "" || r.URL.ForceQuery {
			uri += "?" + r.URL.RawQuery
		}
	} else {
		switch {
		case fwdURI != "" && origURI != "" && fwdURI != origURI:
			return nil, reason.ForwardedHeadersConflict
		case fwdURI != "":
			uri = fwdURI
		case origURI != "":
			uri = origURI
		default:
			return nil, reason.ForwardedURIMissing
		}
		switch {
		case fwdMethod != "" && origMethod != "" && fwdMethod != origMethod:
			return nil, reason.ForwardedHeadersConflict
		case fwdMethod != "":
			method = fwdMethod
		case origMethod != "":
			method = origMethod
		}
		fwdHost, ok := single(r.Header, hdrForwardedHost)
		if !ok {
			return nil, reason.ForwardedHeadersConflict
		}
		if fwdHost != "" {
			if _, ok := authz.ParseForwardedHost(fwdHost); !ok {
				return nil, reason.AuthorityInvalid
			}
			host = fwdHost
		}
		if p := lastValue(r.Header, hdrForwardedProto); p != "" {
			scheme = p
		}
	}
	if _, ok := authz.ParseAuthority(host); !ok {
		// A host an upstream could read differently (issue 10, finding
		// 1): refused before routing, like the gRPC port does.
		return nil, reason.AuthorityInvalid
	}
	if p, _, _ := strings.Cut(uri, "?"); !normalizedPath(p) {
		return nil, reason.PathNotNormalized
	}

	return &authz.Request{
		Method: method, Path: uri, Host: host, Scheme: scheme,
		Headers: authz.Headers{Map: requestHeaders(r.Header)},
	}, ""
}

// single returns the value of header name ("" if absent); ok is false
// when the request repeats it with different values.
func single(h http.Header, name string) (v string, ok bool) {
	vs := h[name]
	if len(vs) == 0 {
		return "", true
	}
	for _, x := range vs[1:] {
		if x != vs[0] {
			return "", false
		}
	}
	return vs[0], true
}

// lastValue returns the last comma-separated element of header name: the
// one the nearest proxy added, should a gateway append rather than set.
func lastValue(h http.Header, name string) string {
	vs := h[name]
	if len(vs) == 0 {
		return ""
	}
	v := vs[len(vs)-1]
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

// requestHeaders copies the request's headers as Envoy sends them: lower-case
// names, repeated values joined with ",", hop-by-hop headers left out.
func requestHeaders(h http.Header) map[string]string {
	skip := map[string]bool{}
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			skip[http.CanonicalHeaderKey(strings.TrimSpace(name))] = true
		}
	}
	out := make(map[string]string, len(h))
	for name, vs := range h {
		if hopByHop[name] || skip[name] {
			continue
		}
		out[strings.ToLower(name)] = strings.Join(vs, ",")
	}
	return out
}

// normalizedPath reports whether p is a path a gateway and its upstream
// cannot read differently from tokengate: absolute, no empty, "." or ".."
// segments, no backslash or control character, and no percent-encoding of
// an unreserved character, "/" or "\" (nor a broken one). Envoy with
// normalize_path and merge_slashes only sends such paths; other gateways
// pass the raw request target, which is refused unless normalized.
func normalizedPath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	if strings.Contains(p, "//") {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c < 0x20 || c == 0x7f || c == '\\':
			return false
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return false
			}
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			if isUnreserved(d) || d == '/' || d == '\\' {
				return false
			}
			i += 2
		}
	}
	return true
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// isUnreserved reports RFC 3986 unreserved characters.
func isUnreserved(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// writeRefusal answers a forward-auth request that names no usable
// original request: 400, in the shape of every deny body.
func writeRefusal(w http.ResponseWriter, code reason.Code) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(authz.ErrorBody("invalid_request", string(code)))
}

// writeDecision writes a Decision as a forward-auth answer: allow is 200
// with the identity headers (and the headers to remove in HeaderRemove); a
// deny, or a metadata document, is written with its own status.
func writeDecision(w http.ResponseWriter, d *authz.Decision, req *authz.Headers) {
	hdr := w.Header()
	switch d.Kind {
	case authz.Allow:
		set := d.AppendUpstream(nil)
		for _, h := range set {
			hdr.Set(h.Name, h.Value)
		}
		if remove := d.AppendRemovals(nil, set, req); len(remove) > 0 {
			hdr.Set(HeaderRemove, strings.Join(remove, ", "))
		}
		hdr.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return
	case authz.Respond:
		// A metadata document: gateways take a 200 for "allow" and forward
		// the request, so client-sent identity headers must go as on allow.
		var remove []string
		for name := range req.Map {
			if len(name) >= len(authz.IdentityPrefix) && strings.EqualFold(name[:len(authz.IdentityPrefix)], authz.IdentityPrefix) {
				remove = append(remove, name)
			}
		}
		if len(remove) > 0 {
			slices.Sort(remove)
			hdr.Set(HeaderRemove, strings.Join(remove, ", "))
		}
	}
	for _, h := range d.ResponseHeaders() {
		hdr.Set(h.Name, h.Value)
	}
	w.WriteHeader(d.Status)
	_, _ = w.Write(d.ResponseBody())
}
