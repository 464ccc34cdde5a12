package server

import (
	"encoding/json"
	"net/http"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/tokengate/tokengate/authz"
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

// Reasons a forward-auth request is refused before any Check: the original
// request cannot be reconstructed unambiguously.
const (
	ReasonForwardedURIMissing = "forwarded_uri_missing"
	ReasonForwardedConflict   = "forwarded_headers_conflict"
	ReasonPathNotNormalized   = "path_not_normalized"
)

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

// forwardAuth answers forward-auth requests with the same Check the gRPC
// port runs. The request body is never read.
func (s *Server) forwardAuth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, reason := checkRequestFrom(r)
		if reason != "" {
			s.log.Info("forward-auth request refused", "code", reason)
			writeRefusal(w, reason)
			return
		}
		resp, err := s.svc.Check(r.Context(), req)
		if err != nil {
			// Check answers every failure itself; this is only defensive.
			s.log.Error("forward-auth check failed", "error", err)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":"server_error","error_description":"check_failed"}`))
			return
		}
		writeCheckResponse(w, r, resp)
	})
}

// checkRequestFrom rebuilds the original request from a forward-auth
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
func checkRequestFrom(r *http.Request) (*authv3.CheckRequest, string) {
	fwdURI, ok1 := single(r.Header, hdrForwardedURI)
	origURI, ok2 := single(r.Header, hdrOriginalURI)
	fwdMethod, ok3 := single(r.Header, hdrForwardedMethod)
	origMethod, ok4 := single(r.Header, hdrOriginalMethod)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil, ReasonForwardedConflict
	}

	method, host, uri := r.Method, r.Host, ""
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	escaped := r.URL.EscapedPath()
	if rest, envoyStyle := strings.CutPrefix(escaped, ForwardAuthPrefix+"/"); envoyStyle {
		if fwdURI != "" || origURI != "" || fwdMethod != "" || origMethod != "" {
			return nil, ReasonForwardedConflict
		}
		uri = "/" + rest
		if r.URL.RawQuery != "" || r.URL.ForceQuery {
			uri += "?" + r.URL.RawQuery
		}
	} else {
		switch {
		case fwdURI != "" && origURI != "" && fwdURI != origURI:
			return nil, ReasonForwardedConflict
		case fwdURI != "":
			uri = fwdURI
		case origURI != "":
			uri = origURI
		default:
			return nil, ReasonForwardedURIMissing
		}
		switch {
		case fwdMethod != "" && origMethod != "" && fwdMethod != origMethod:
			return nil, ReasonForwardedConflict
		case fwdMethod != "":
			method = fwdMethod
		case origMethod != "":
			method = origMethod
		}
		fwdHost, ok := single(r.Header, hdrForwardedHost)
		if !ok {
			return nil, ReasonForwardedConflict
		}
		if fwdHost != "" {
			if _, ok := authz.ParseForwardedHost(fwdHost); !ok {
				return nil, authz.ReasonAuthorityInvalid
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
		return nil, authz.ReasonAuthorityInvalid
	}
	if p, _, _ := strings.Cut(uri, "?"); !normalizedPath(p) {
		return nil, ReasonPathNotNormalized
	}

	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method:   method,
			Path:     uri,
			Host:     host,
			Scheme:   scheme,
			Protocol: r.Proto,
			Headers:  checkHeaders(r.Header),
		}},
	}}, ""
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

// checkHeaders copies the request's headers as Envoy sends them: lower-case
// names, repeated values joined with ",", hop-by-hop headers left out.
func checkHeaders(h http.Header) map[string]string {
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
func writeRefusal(w http.ResponseWriter, reason string) {
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{"invalid_request", reason})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(body)
}

// writeCheckResponse writes a CheckResponse as a forward-auth answer, as
// Envoy reads it: an OK status without a denied response is allow, 200 with
// the identity headers (and the headers to remove in HeaderRemove); a deny,
// or a 200 metadata document, is written as it is (403 if it has no status).
func writeCheckResponse(w http.ResponseWriter, r *http.Request, resp *authv3.CheckResponse) {
	hdr := w.Header()
	d := resp.GetDeniedResponse()
	if d == nil && resp.GetStatus().GetCode() == int32(codes.OK) {
		ok := resp.GetOkResponse()
		setHeaders(hdr, ok.GetHeaders())
		if remove := ok.GetHeadersToRemove(); len(remove) > 0 {
			hdr.Set(HeaderRemove, strings.Join(remove, ", "))
		}
		hdr.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return
	}
	setHeaders(hdr, d.GetHeaders())
	status := int(d.GetStatus().GetCode())
	if status == 0 {
		status = http.StatusForbidden // Envoy's default for a deny without a status
	}
	if status == http.StatusOK {
		// A metadata document: gateways take a 200 for "allow" and forward
		// the request, so client-sent identity headers must go as on allow.
		var remove []string
		for name := range r.Header {
			if len(name) >= len(authz.IdentityPrefix) && strings.EqualFold(name[:len(authz.IdentityPrefix)], authz.IdentityPrefix) {
				remove = append(remove, strings.ToLower(name))
			}
		}
		if len(remove) > 0 {
			hdr.Set(HeaderRemove, strings.Join(remove, ", "))
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(d.GetBody()))
}

// setHeaders applies Envoy header options to h as Envoy would: the
// deprecated append flag if set, else the append action (whose zero value
// appends).
func setHeaders(h http.Header, opts []*corev3.HeaderValueOption) {
	for _, o := range opts {
		k, v := o.GetHeader().GetKey(), o.GetHeader().GetValue()
		if raw := o.GetHeader().GetRawValue(); len(raw) > 0 {
			v = string(raw)
		}
		if k == "" {
			continue
		}
		action := o.GetAppendAction()
		if o.GetAppend() != nil {
			action = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
			if o.GetAppend().GetValue() {
				action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
			}
		}
		_, exists := h[http.CanonicalHeaderKey(k)]
		switch action {
		case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
			h.Add(k, v)
		case corev3.HeaderValueOption_ADD_IF_ABSENT:
			if !exists {
				h.Set(k, v)
			}
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
			if exists {
				h.Set(k, v)
			}
		default:
			h.Set(k, v)
		}
	}
}
