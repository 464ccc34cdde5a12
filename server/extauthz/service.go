// Package extauthz is Envoy's ext_authz v3 gRPC protocol: it reads a
// CheckRequest (wire.go decodes only the fields tokengate uses), has
// authz decide, and renders the Decision as a CheckResponse (answer.go).
package extauthz

import (
	"context"
	"unsafe"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tokengate/tokengate/authz"
)

// Service implements envoy.service.auth.v3.Authorization on an
// authz.Service.
type Service struct {
	authv3.UnimplementedAuthorizationServer
	authz *authz.Service
}

// NewService returns the Check service answering with s's decisions.
func NewService(s *authz.Service) *Service { return &Service{authz: s} }

// Check implements the ext_authz v3 Check RPC. It never returns an error:
// every failure is an answer, so Envoy never falls back to its own default.
func (s *Service) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	attrs := req.GetAttributes()
	h := attrs.GetRequest().GetHttp()
	pinned, isPinned := attrs.GetContextExtensions()[authz.RouteContextKey]
	r := authz.Request{
		Method: h.GetMethod(), Path: h.GetPath(), Host: h.GetHost(), Scheme: h.GetScheme(),
		Headers: RequestHeaders(h),
		Body:    body(h),
		// include_peer_certificate: for certificate-bound tokens.
		PeerCertificate: attrs.GetSource().GetCertificate(),
		PinnedRoute:     pinned, Pinned: isPinned,
	}
	d := s.authz.Decide(ctx, &r)
	return render(&d, &r.Headers), nil
}

// body returns the request body Envoy forwarded (with_request_body): its
// bytes (pack_as_bytes), or its text, read in place.
func body(h *authv3.AttributeContext_HttpRequest) []byte {
	if raw := h.GetRawBody(); len(raw) > 0 {
		return raw
	}
	b := h.GetBody()
	return unsafe.Slice(unsafe.StringData(b), len(b)) // read only
}

// RequestHeaders reads a CheckRequest's headers: the headers map, or,
// when the ext_authz filter sets encode_raw_headers, header_map instead.
func RequestHeaders(h *authv3.AttributeContext_HttpRequest) authz.Headers {
	hs := authz.Headers{Map: h.GetHeaders()}
	if list := h.GetHeaderMap().GetHeaders(); len(list) > 0 {
		hs.List = make([]authz.Field, len(list))
		for i, hv := range list {
			v := hv.GetValue()
			if raw := hv.GetRawValue(); len(raw) > 0 {
				v = string(raw)
			}
			hs.List[i] = authz.Field{Name: hv.GetKey(), Value: v}
		}
	}
	return hs
}
