package extauthz

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tokengate/tokengate/authz"
)

// render turns a Decision into Envoy's CheckResponse.
func render(d *authz.Decision, req *authz.Headers) *authv3.CheckResponse {
	var resp *authv3.CheckResponse
	if d.Kind == authz.Allow {
		resp = allow(d, req)
	} else {
		resp = denied(d)
	}
	resp.DynamicMetadata = dynamicMetadata(d)
	return resp
}

// dynamicMetadata is what Envoy's access log and later filters may read of
// the decision (%DYNAMIC_METADATA(envoy.filters.http.ext_authz:sub)%): never
// the token, and only what is known.
func dynamicMetadata(d *authz.Decision) *structpb.Struct {
	m := new(metadataAnswer) // with its values: one allocation, plus the map
	m.s.Fields = make(map[string]*structpb.Value, metadataFields)
	n := 0
	put := func(k, v string) {
		if v != "" {
			m.strs[n].StringValue = v
			m.vals[n].Kind = &m.strs[n]
			m.s.Fields[k] = &m.vals[n]
			n++
		}
	}
	if d.Route != nil {
		put("route", d.Route.Name)
	}
	put("verifier", d.Identity.Verifier())
	put("decision", d.Label())
	put("reason", string(d.Reason))
	put("sub", d.Identity.Subject())
	put("client_id", d.Identity.ClientID())
	put("mcp_method", d.MCP.Method)
	put("mcp_name", d.MCP.Name)
	return &m.s
}

// metadataFields is how many fields dynamicMetadata may set.
const metadataFields = 8

// metadataAnswer is the dynamic metadata Struct with room for its string
// values, so that they take one allocation instead of two each.
type metadataAnswer struct {
	s    structpb.Struct
	vals [metadataFields]structpb.Value
	strs [metadataFields]structpb.Value_StringValue
}

// allowInline is how many upstream headers, and headers to remove, an allow
// answer holds without growing its lists.
const allowInline = 8

// allowAnswer is an allow CheckResponse with the messages and lists it
// points to, so that it takes one allocation (plus one for the headers set,
// if any): this is the answer of every cache hit, the hot path. Its status
// is okStatus, shared by every answer, which gRPC only reads (it marshals
// answers concurrently, as it may).
type allowAnswer struct {
	resp   authv3.CheckResponse
	ok     authv3.CheckResponse_OkResponse
	okResp authv3.OkHttpResponse
	set    [allowInline]*corev3.HeaderValueOption
	remove [allowInline]string
}

// headerPair is a HeaderValueOption with the HeaderValue it points to.
type headerPair struct {
	opt corev3.HeaderValueOption
	val corev3.HeaderValue
}

// okStatus is the status of every allow answer. Never modify it.
var okStatus = &rpcstatus.Status{Code: int32(codes.OK)}

func allow(d *authz.Decision, req *authz.Headers) *authv3.CheckResponse {
	var buf [allowInline]authz.Header
	set := d.AppendUpstream(buf[:0])
	a := new(allowAnswer)
	if len(set) > 0 {
		pairs := make([]headerPair, len(set))
		opts := a.set[:0]
		for i, h := range set {
			p := &pairs[i]
			p.val.Key, p.val.Value = h.Name, h.Value
			p.opt.Header = &p.val
			p.opt.AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
			opts = append(opts, &p.opt)
		}
		a.okResp.Headers = opts
	}
	if remove := d.AppendRemovals(a.remove[:0], set, req); len(remove) > 0 {
		a.okResp.HeadersToRemove = remove
	}
	if toClient := d.AppendClientHeaders(nil); len(toClient) > 0 {
		a.okResp.ResponseHeadersToAdd = options(toClient)
	}
	a.ok.OkResponse = &a.okResp
	a.resp.Status = okStatus
	a.resp.HttpResponse = &a.ok
	return &a.resp
}

// denied answers the client directly: a deny, or a document tokengate
// serves itself (as a "denied" response with status 200, so that Envoy
// needs no route of its own for it).
func denied(d *authz.Decision) *authv3.CheckResponse {
	headers := options(d.ResponseHeaders())
	grpcCode := codes.PermissionDenied
	switch d.Status {
	case 401:
		grpcCode = codes.Unauthenticated
	case 503:
		grpcCode = codes.Unavailable
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(grpcCode)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)},
			Headers: headers,
			Body:    string(d.ResponseBody()),
		}},
	}
}

// options turns headers into Envoy header options that overwrite.
func options(hs []authz.Header) []*corev3.HeaderValueOption {
	out := make([]*corev3.HeaderValueOption, len(hs))
	for i, h := range hs {
		action := corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		if h.Name == "vary" {
			action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD // keep the upstream's Vary
		}
		out[i] = &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: h.Name, Value: h.Value}, AppendAction: action}
	}
	return out
}
