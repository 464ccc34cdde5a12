package authz

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"github.com/tokengate/tokengate/verify"
)

// RetryAfterSeconds is sent with every 503.
const RetryAfterSeconds = "5"

// response turns the outcome into Envoy's CheckResponse.
func (o *outcome) response(p *Policy) *authv3.CheckResponse {
	switch o.status {
	case 0:
		return o.allow(p)
	case 200:
		return okBody(o.body)
	}
	return o.deny()
}

// allowInline is how many upstream headers, and headers to remove, an allow
// answer holds without growing its lists.
const allowInline = 8

// allowAnswer is an allow CheckResponse with the messages and lists it
// points to, so that it takes one allocation (plus one for the headers set,
// if any): this is the answer of every cache hit, the hot path. Its status
// is okStatus, and on a cache hit its x-auth-iss and x-auth-verifier
// headers are the entry source's: messages shared by every answer, which
// gRPC only reads (it marshals answers concurrently, as it may).
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

// sharedHeader returns the header option that sets name to value, for
// answers to share, or nil when value is not set (as allow's have skips
// it).
func sharedHeader(name, value string) *corev3.HeaderValueOption {
	if value == "" || !validHeaderValue(value) {
		return nil
	}
	return header(name, value)
}

func (o *outcome) allow(p *Policy) *authv3.CheckResponse {
	r := o.route
	a := new(allowAnswer)
	set := a.set[:0]
	var pairs []headerPair // allocated once, at the first header set
	maxPairs := 5 + len(r.claimHeaders)
	if o.hit != nil {
		maxPairs -= 2 // x-auth-iss and x-auth-verifier are shared
	}
	have := func(name, value string) {
		if value == "" || !validHeaderValue(value) {
			return
		}
		if pairs == nil {
			pairs = make([]headerPair, 0, maxPairs)
		}
		pairs = pairs[:len(pairs)+1] // within cap: have runs at most that often
		pair := &pairs[len(pairs)-1]
		pair.val.Key, pair.val.Value = name, value
		pair.opt.Header = &pair.val
		pair.opt.AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		set = append(set, &pair.opt)
	}
	switch {
	case o.hit != nil:
		f, src := o.hit.fields(), o.hit.src
		have(HeaderSub, f.sub)
		if src.iss != nil {
			set = append(set, src.iss)
		}
		have(HeaderScopes, f.joinedScopes)
		have(HeaderClientID, f.clientID)
		if src.name != nil {
			set = append(set, src.name)
		}
		for _, ch := range r.claimHeaders {
			have(ch.header, f.claim(p.tokens.claimNames, ch.claim))
		}
	case o.id != nil:
		id := o.id
		var claims map[string]string
		if len(r.claimHeaders) > 0 && id.Payload != nil {
			claims = claimValues(id.Payload, r.claimHeaders)
		}
		have(HeaderSub, id.Subject)
		have(HeaderIss, id.Issuer)
		have(HeaderScopes, strings.Join(id.Scopes, " "))
		have(HeaderClientID, id.ClientID)
		have(HeaderVerifier, id.Verifier)
		for _, ch := range r.claimHeaders {
			have(ch.header, claims[ch.claim])
		}
	}
	// Never remove a header that is also set: the set overwrites any value
	// the client sent, whatever order Envoy applies the two lists in.
	remove := a.remove[:0]
	for _, name := range r.strip {
		isSet := false
		for _, h := range set {
			if h.Header.Key == name {
				isSet = true
				break
			}
		}
		if !isSet {
			remove = append(remove, name)
		}
	}
	remove = appendSpoofed(remove, o.req, set, r.strip)
	if len(set) > 0 {
		a.okResp.Headers = set
	}
	if len(remove) > 0 {
		a.okResp.HeadersToRemove = remove
	}
	a.ok.OkResponse = &a.okResp
	a.resp.Status = okStatus
	a.resp.HttpResponse = &a.ok
	return &a.resp
}

func header(name, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: name, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// validHeaderValue refuses control characters, so a claim can never split
// or corrupt a header.
func validHeaderValue(v string) bool {
	if len(v) > 8192 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// okBody answers a request directly with 200 and a JSON document (the RFC
// 9728 metadata), so Envoy needs no route of its own for it.
func okBody(body []byte) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_OK},
			Headers: []*corev3.HeaderValueOption{
				header("content-type", "application/json"),
				header("cache-control", "max-age=300"),
			},
			Body: string(body),
		}},
	}
}

// deny builds a 400/401/403/503 answer per RFC 6750 and RFC 9728.
func (o *outcome) deny() *authv3.CheckResponse {
	errCode, desc := "invalid_token", o.reason
	switch {
	case o.reason == ReasonNoRoute:
		errCode, desc = "access_denied", "no route"
	case o.reason == ReasonUnknownPin:
		errCode, desc = "access_denied", "unknown route in context extension "+RouteContextKey
	case o.reason == verify.Code(verify.ErrTokenMissing):
		errCode, desc = "invalid_request", "missing bearer token"
	case o.status == 400:
		errCode = "invalid_request"
	case o.status == 403:
		errCode = "insufficient_scope"
	case o.status == 503:
		errCode = "temporarily_unavailable"
	}
	headers := []*corev3.HeaderValueOption{
		header("content-type", "application/json"),
		header("cache-control", "no-store"),
	}
	if o.route != nil && (o.status == 400 || o.status == 401 || o.status == 403) {
		headers = append(headers, header("www-authenticate", o.challenge(errCode, desc)))
	}
	if o.status == 503 {
		headers = append(headers, header("retry-after", RetryAfterSeconds))
	}
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{errCode, desc})
	grpcCode := codes.PermissionDenied
	if o.status == 401 {
		grpcCode = codes.Unauthenticated
	} else if o.status == 503 {
		grpcCode = codes.Unavailable
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(grpcCode)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(o.status)},
			Headers: headers,
			Body:    string(body),
		}},
	}
}

// challenge builds the WWW-Authenticate value. A request without
// credentials gets no error attribute (RFC 6750 section 3.1).
func (o *outcome) challenge(errCode, desc string) string {
	var b bytes.Buffer
	b.WriteString("Bearer")
	sep := " "
	param := func(k, v string) {
		b.WriteString(sep)
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(strconv.Quote(v))
		sep = ", "
	}
	if o.reason != verify.Code(verify.ErrTokenMissing) {
		param("error", errCode)
		param("error_description", desc)
		if errCode == "insufficient_scope" {
			param("scope", o.route.scopeParam)
		}
	}
	if o.route.metadataURL != "" {
		param("resource_metadata", o.route.metadataURL)
	}
	return b.String()
}

// claimValues reads the wanted claims as header values: strings as they
// are, numbers and booleans as text, arrays comma-joined, objects as
// compact JSON.
func claimValues(payload []byte, wanted []claimHeader) map[string]string {
	var all map[string]json.RawMessage
	if json.Unmarshal(payload, &all) != nil {
		return nil
	}
	out := make(map[string]string, len(wanted))
	for _, w := range wanted {
		raw, ok := all[w.claim]
		if !ok {
			continue
		}
		out[w.claim] = claimText(raw)
	}
	return out
}

func claimText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	case '[':
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return ""
		}
		parts := make([]string, len(items))
		for i, it := range items {
			parts[i] = claimText(it)
		}
		return strings.Join(parts, ",")
	case '{':
		var b bytes.Buffer
		if json.Compact(&b, raw) != nil {
			return ""
		}
		return b.String()
	case 'n':
		return ""
	}
	return string(raw)
}

// IdentityPrefix marks headers an upstream may take for identity. Besides
// the names tokengate sets, any request header with this prefix is removed
// on allow, so a client cannot slip in, say, x-auth-role for an upstream
// that trusts the whole prefix.
const IdentityPrefix = "x-auth-"

// appendSpoofed adds to remove every request header starting with
// IdentityPrefix that is neither set nor already listed.
func appendSpoofed(remove []string, req *authv3.AttributeContext_HttpRequest, set []*corev3.HeaderValueOption, listed []string) []string {
	consider := func(name string) {
		if len(name) < len(IdentityPrefix) || !strings.EqualFold(name[:len(IdentityPrefix)], IdentityPrefix) {
			return
		}
		name = strings.ToLower(name)
		if contains(listed, name) || contains(remove, name) {
			return
		}
		for _, h := range set {
			if h.Header.Key == name {
				return
			}
		}
		remove = append(remove, name)
	}
	for name := range req.GetHeaders() {
		consider(name)
	}
	for _, hv := range req.GetHeaderMap().GetHeaders() {
		consider(hv.GetKey())
	}
	return remove
}
