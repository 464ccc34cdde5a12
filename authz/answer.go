package authz

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/tokengate/tokengate/reason"
	"github.com/tokengate/tokengate/verify/dpop"
)

// This file says what a Decision answers, in transport-neutral terms: the
// headers set on the upstream request and removed from it on allow, and the
// status, headers and body of a deny or of a document tokengate serves.
// server renders these as an Envoy CheckResponse or a forward-auth answer.

// Header is one header of an answer.
type Header struct{ Name, Value string }

// RetryAfterSeconds is sent with every 503.
const RetryAfterSeconds = "5"

// IdentityPrefix marks headers an upstream may take for identity. Besides
// the names tokengate sets, any request header with this prefix is removed
// on allow, so a client cannot slip in, say, x-auth-role for an upstream
// that trusts the whole prefix.
const IdentityPrefix = "x-auth-"

// AppendUpstream appends the identity headers an Allow sets on the upstream
// request. A value that could not be sent as a header is left out.
func (d *Decision) AppendUpstream(dst []Header) []Header {
	if d.Kind != Allow || d.Route == nil || d.Route.anonymous {
		return dst
	}
	id := d.Identity
	dst = appendHeader(dst, HeaderSub, id.Subject())
	dst = appendHeader(dst, HeaderIss, id.Issuer())
	dst = appendHeader(dst, HeaderScopes, id.Scopes())
	dst = appendHeader(dst, HeaderClientID, id.ClientID())
	dst = appendHeader(dst, HeaderVerifier, id.Verifier())
	for _, ch := range d.Route.claimHeaders {
		dst = appendHeader(dst, ch.header, id.Claim(ch.claim))
	}
	if d.authorization != "" {
		dst = append(dst, Header{"authorization", d.authorization})
	}
	if d.MCP.Method != "" {
		dst = appendHeader(dst, HeaderMCPMethod, d.MCP.Method)
		dst = appendHeader(dst, HeaderMCPName, d.MCP.Name)
	}
	return dst
}

// AppendClientHeaders appends the headers an Allow adds to the upstream's
// response to the client: the CORS headers of an allowed origin.
func (d *Decision) AppendClientHeaders(dst []Header) []Header {
	return appendCORS(dst, d.Origin)
}

func appendHeader(dst []Header, name, value string) []Header {
	if value == "" || !validHeaderValue(value) {
		return dst
	}
	return append(dst, Header{name, value})
}

// AppendRemovals appends the request headers an Allow removes before the
// upstream: every identity header tokengate did not set itself (set),
// Authorization and Proxy-Authorization unless the route forwards
// credentials, and every request header that the route's HeaderGuard
// protects, in any spelling (case, "_" for "-"), and any other with
// IdentityPrefix. A header that is set is never also removed: the set
// overwrites any value the client sent, whatever order the proxy applies
// the two lists in.
func (d *Decision) AppendRemovals(dst []string, set []Header, req *Headers) []string {
	if d.Route == nil {
		return dst
	}
	for _, name := range d.Route.strip {
		if !isSet(set, name) {
			dst = append(dst, name)
		}
	}
	return d.Route.guard.AppendRemovals(dst, req, set)
}

func isSet(set []Header, name string) bool {
	for _, h := range set {
		if h.Name == name {
			return true
		}
	}
	return false
}

// ResponseHeaders returns the headers of a Deny or Respond answer.
func (d *Decision) ResponseHeaders() []Header {
	if d.Kind == Respond {
		return d.headers
	}
	h := []Header{{"content-type", "application/json"}, {"cache-control", "no-store"}}
	errCode, desc := d.oauthError()
	switch {
	case d.Route != nil && isDPoPError(d.Err):
		// RFC 9449 section 7.1: the DPoP scheme's challenge.
		h = append(h, Header{"www-authenticate", fmt.Sprintf("DPoP error=%q, error_description=%q, algs=%q", desc, desc, d.Route.dpopAlgs)})
		if nonce := dpop.NonceOf(d.Err); nonce != "" {
			h = append(h, Header{"dpop-nonce", nonce})
		}
	case d.Route != nil && errCode != "access_denied" && d.Reason != reason.MCPHeaderMismatch &&
		(d.Status == 400 || d.Status == 401 || d.Status == 403):
		h = append(h, Header{"www-authenticate", d.challenge(errCode, desc)})
		if d.Status == 401 && d.Route.requireDPoP {
			// Bearer is refused here: say which scheme is wanted.
			h[len(h)-1].Value = fmt.Sprintf("DPoP algs=%q, ", d.Route.dpopAlgs) + h[len(h)-1].Value
		}
	}
	if d.Status == 503 {
		h = append(h, Header{"retry-after", RetryAfterSeconds})
	}
	return appendCORS(h, d.Origin)
}

// ResponseBody returns the body of a Deny (the OAuth error object, or a
// JSON-RPC error for a header mismatch) or a Respond (its document).
func (d *Decision) ResponseBody() []byte {
	switch {
	case d.Kind == Respond:
		return d.Body
	case d.Reason == reason.MCPHeaderMismatch:
		id := d.MCP.ID
		if len(id) == 0 {
			id = json.RawMessage("null")
		}
		body, _ := json.Marshal(struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Error   rpcError        `json:"error"`
		}{"2.0", id, rpcError{-32020, "header mismatch"}})
		return body
	}
	errCode, desc := d.oauthError()
	return ErrorBody(errCode, desc)
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// ErrorBody is the JSON body of every error answer: an OAuth error code and
// its description (a reason code or the contract's short text).
func ErrorBody(errCode, desc string) []byte {
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{errCode, desc})
	return body
}

// oauthError returns a Deny's OAuth error code (RFC 6749 / 6750) and its
// description.
func (d *Decision) oauthError() (errCode, desc string) {
	switch {
	case d.Reason == reason.RouteNotFound:
		return "access_denied", "no route"
	case d.Reason == reason.RouteUnknown:
		return "access_denied", "unknown route in context extension " + RouteContextKey
	case d.Reason == reason.TokenMissing:
		return "invalid_request", "missing bearer token"
	case d.Reason == reason.OriginNotAllowed || d.Reason == reason.MCPOperationDenied || d.Reason == reason.TokenExchangeRefused:
		return "access_denied", string(d.Reason)
	case d.Status == 400:
		return "invalid_request", string(d.Reason)
	case d.Status == 403:
		return "insufficient_scope", string(d.Reason)
	case d.Status == 503:
		return "temporarily_unavailable", string(d.Reason)
	}
	return "invalid_token", string(d.Reason)
}

// challenge builds the WWW-Authenticate value. A request without
// credentials gets no error attribute (RFC 6750 section 3.1).
func (d *Decision) challenge(errCode, desc string) string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	param := func(k, v string) {
		b.WriteString(sep)
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(strconv.Quote(v))
		sep = ", "
	}
	if d.Reason != reason.TokenMissing {
		param("error", errCode)
		param("error_description", desc)
	}
	// The scopes this request needs: on a 403, what to ask for; on a 401,
	// what to ask for the first time (SEP-835).
	if d.Scopes != "" && (errCode == "insufficient_scope" || d.Status == 401) {
		param("scope", d.Scopes)
	}
	if d.Route.metadataURL != "" {
		param("resource_metadata", d.Route.metadataURL)
	}
	return b.String()
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
