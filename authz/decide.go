package authz

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/reason"
	"github.com/tokengate/tokengate/upstream"
	"github.com/tokengate/tokengate/verify"
)

// Request is what authz reads of one HTTP request, whichever transport
// brought it: an Envoy CheckRequest or a forward-auth request.
type Request struct {
	Method string
	// Path is the request target's path; a query or fragment is ignored.
	Path string
	// Host is the :authority (or forwarded host) as sent, port included.
	Host   string
	Scheme string
	// Headers are the request's headers.
	Headers Headers
	// Body is the request body as the proxy forwarded it (possibly only
	// its start: see mcp.go), or nil.
	Body []byte
	// PeerCertificate is the client certificate of the connection as Envoy
	// sends it (source.certificate, URL-encoded PEM), or "".
	PeerCertificate string
	// PinnedRoute names the route to use instead of matching, when Pinned
	// (Envoy's per-route context extension tokengate_route).
	PinnedRoute string
	Pinned      bool
}

// Headers are a request's headers as a proxy sends them: a map of
// lower-case names to values (repeated headers joined with ","), or a list
// that keeps repeated headers apart (Envoy's encode_raw_headers), or both.
type Headers struct {
	Map  map[string]string
	List []Field
}

// Field is one header of a list.
type Field struct{ Name, Value string }

// Get returns the value of the header name (lower case): the map's, else
// the list's values joined with ",".
func (h *Headers) Get(name string) string {
	if v, ok := h.Map[name]; ok {
		return v
	}
	var values []string
	for _, f := range h.List {
		if strings.EqualFold(f.Name, name) {
			values = append(values, f.Value)
		}
	}
	return strings.Join(values, ",")
}

// Kind is what a Decision does with the request.
type Kind uint8

// The kinds of decision.
const (
	// Allow forwards the request upstream with identity headers.
	Allow Kind = iota
	// Deny answers the client with an error status and a challenge.
	Deny
	// Respond answers the client with a document tokengate serves itself
	// (the RFC 9728 metadata), status 200.
	Respond
)

// String names the kind, as logs and metric labels do.
func (k Kind) String() string {
	switch k {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	}
	return "metadata"
}

// Decision is the answer to one request, before any transport renders it
// (see answer.go for what it says, server/ for the renderings).
type Decision struct {
	Kind   Kind
	Status int // of a Deny or Respond
	Reason reason.Code
	// Route is the route that decided (nil when none matched).
	Route *Route
	// Identity is the verified identity of an Allow on a route with
	// verifiers; on a Deny its Verifier names the verifier that refused.
	Identity verify.Result
	// Err is a Deny's error, for the log line.
	Err error
	// Body is a Respond's document.
	Body []byte
	// Origin is the request's Origin when the route lets it read answers:
	// every answer then carries CORS headers.
	Origin string
	// MCP is the operation of a request that carried one JSON-RPC message
	// (MCP.Method is empty otherwise).
	MCP Operation
	// Scopes are the scopes this request needed, for the challenge.
	Scopes string
	// headers are a Respond's headers.
	headers []Header
	// authorization is what an Allow sets in the upstream's Authorization
	// (an assertion or an exchanged token); "" removes it (or, on a route
	// that forwards it, keeps the client's).
	authorization string
}

// Outcome summarizes one decision for observers (metrics, tracing). Every
// field is safe for labels and logs: no token, no subject.
type Outcome struct {
	Route, Verifier string
	// Decision is "allow", "deny" or "metadata".
	Decision string
	Reason   reason.Code
	// Status is the HTTP status of a deny or metadata answer (0 on allow).
	Status   int
	Duration time.Duration
}

// Observer is told about every decision, with the request's context. It
// must not block.
type Observer interface {
	Observe(ctx context.Context, o Outcome)
}

// Service decides requests with the policy in force. It reads one Policy
// snapshot per request; SetPolicy swaps in a new one atomically. Both
// transports (server's ext_authz Check and forward-auth) call Decide.
type Service struct {
	policy   atomic.Pointer[Policy]
	log      *slog.Logger
	observer Observer
	// denyLog bounds the deny log lines an anonymous client can cause.
	denyLog *DenyLogLimiter
}

// NewService returns a service deciding with p.
func NewService(p *Policy, log *slog.Logger, obs Observer) *Service {
	if log == nil {
		log = slog.Default()
	}
	s := &Service{log: log, observer: obs, denyLog: NewDenyLogLimiter(0, 0)}
	s.policy.Store(p)
	return s
}

// SetPolicy swaps in a new policy; requests in flight finish on the old one.
func (s *Service) SetPolicy(p *Policy) { s.policy.Store(p) }

// Policy returns the policy in use.
func (s *Service) Policy() *Policy { return s.policy.Load() }

// Decide decides one request, tells the observer and logs a deny. It never
// fails: every failure is a Deny.
func (s *Service) Decide(ctx context.Context, req *Request) Decision {
	var start time.Time
	if s.observer != nil {
		start = time.Now()
	}
	d := s.policy.Load().Decide(ctx, req)
	routeName := ""
	if d.Route != nil {
		routeName = d.Route.Name
	}
	verifier := d.Identity.Verifier()
	if s.observer != nil {
		status := d.Status
		if d.Kind == Allow {
			status = 0
		}
		s.observer.Observe(ctx, Outcome{
			Route: routeName, Verifier: verifier, Decision: d.Label(), Reason: d.Reason,
			Status: status, Duration: time.Since(start),
		})
	}
	if d.Kind == Deny && s.log.Enabled(ctx, slog.LevelInfo) {
		ok, suppressed := s.denyLog.Allow(time.Now())
		if !ok {
			return d
		}
		attrs := []any{"route", routeName, "status", d.Status, "code", string(d.Reason)}
		if suppressed > 0 {
			attrs = append(attrs, "suppressed", suppressed)
		}
		if verifier != "" {
			attrs = append(attrs, "verifier", verifier)
		}
		if d.Err != nil && d.Err.Error() != string(d.Reason) {
			attrs = append(attrs, "detail", d.Err.Error())
		}
		s.log.Info("deny", attrs...)
	}
	return d
}

// Decide decides req. In order: an RFC 9728 document or a CORS preflight
// tokengate answers itself, then the route, the Origin check, the
// credential's presence, the MCP operation, and the route's verification
// call with the scopes the request needs.
func (p *Policy) Decide(ctx context.Context, req *Request) Decision {
	reqPath := PathOnly(req.Path)
	origin := req.Headers.Get("origin")
	isPreflight := preflight(req, origin)
	if strings.HasPrefix(reqPath, WellKnownPRM) && (req.Method == "GET" || isPreflight) {
		// ".../oauth-protected-resource/mcp/" asks for the same document.
		if r, ok := p.metadata[strings.TrimSuffix(reqPath, "/")]; ok {
			if isPreflight {
				return Decision{Kind: Respond, Status: 204, Route: r, Reason: reason.Preflight, headers: publicPreflight()}
			}
			return Decision{Kind: Respond, Status: 200, Route: r, Reason: reason.Metadata, Body: r.metadataJSON, headers: metadataHeaders}
		}
	}

	// The host an upstream reads must be the host routes match on.
	host, ok := ParseAuthority(req.Host)
	if !ok {
		return Decision{Kind: Deny, Status: 400, Reason: reason.AuthorityInvalid}
	}
	var route *Route
	if isPreflight && !req.Pinned {
		// A preflight asks for the method that will follow.
		if r := p.match(host, reqPath, req.Headers.Get("access-control-request-method")); r != nil && r.cors != nil {
			if !r.cors.allows(origin) {
				return Decision{Kind: Deny, Status: 403, Route: r, Reason: reason.OriginNotAllowed}
			}
			return Decision{Kind: Respond, Status: 204, Route: r, Reason: reason.Preflight, headers: r.cors.preflightHeaders(origin, req)}
		}
	}
	if req.Pinned {
		if route = p.byName[req.PinnedRoute]; route == nil {
			return Decision{Kind: Deny, Status: 403, Reason: reason.RouteUnknown}
		}
	} else if route = p.match(host, reqPath, req.Method); route == nil {
		return Decision{Kind: Deny, Status: 403, Reason: reason.RouteNotFound}
	}
	if isPreflight && route.cors != nil {
		// A pinned route's preflight.
		if !route.cors.allows(origin) {
			return Decision{Kind: Deny, Status: 403, Route: route, Reason: reason.OriginNotAllowed}
		}
		return Decision{Kind: Respond, Status: 204, Route: route, Reason: reason.Preflight, headers: route.cors.preflightHeaders(origin, req)}
	}
	d := Decision{Kind: Allow, Route: route, Scopes: route.scopeParam}
	if route.cors.allows(origin) {
		d.Origin = origin
	}
	if route.mcp != nil && origin != "" && d.Origin == "" && !sameOrigin(origin, req) {
		// DNS rebinding: a page of another origin talking to a local server.
		return d.deny(403, reason.OriginNotAllowed, nil)
	}
	if route.anonymous {
		d.Reason = reason.Anonymous
		return d
	}

	raw, isDPoP, err := credential(req.Headers.Get("authorization"))
	if err != nil {
		return d.denied(verify.Result{}, err)
	}
	exp := verify.Expect{Scopes: route.required, Broader: p.broader}
	if !route.plainRequest(isDPoP, req) {
		exp.Sender = p.sender(route, req, isDPoP)
	}
	if route.mcp != nil && req.Method == "POST" {
		ops, err := route.mcp.operations(req)
		switch {
		case errors.Is(err, errHeaderMismatch):
			if len(ops) == 1 {
				d.MCP.ID = ops[0].ID
			}
			return d.deny(400, reason.MCPHeaderMismatch, err)
		case err != nil:
			return d.deny(400, reason.MCPOperationUnknown, err)
		}
		if len(ops) == 1 {
			d.MCP = ops[0]
		}
		var denied bool
		if exp.Scopes, denied = route.operationScopes(ops); denied {
			return d.deny(403, reason.MCPOperationDenied, nil)
		}
		d.Scopes = strings.Join(exp.Scopes, " ")
	}
	id, err := route.chain.Verify(ctx, raw, exp)
	if err != nil {
		return d.denied(id, err)
	}
	d.Reason, d.Identity = reason.OK, id
	if m := route.upstream.Mode(); m == config.UpstreamAssertion || m == config.UpstreamExchange {
		return d.upstreamCredential(ctx, raw)
	}
	return d
}

// upstreamCredential sets what the upstream receives instead of the
// client's token.
func (d Decision) upstreamCredential(ctx context.Context, raw string) Decision {
	// The identity is built only if an assertion must be signed.
	req := upstream.Request{Token: raw, Verified: d.Identity, Expiry: d.Identity.Expiry()}
	var v string
	var err error
	if h, ok := d.Identity.TokenHash(); ok {
		v, err = d.Route.upstream.AuthorizationHashed(ctx, upstream.TokenHash(h), req)
	} else {
		v, err = d.Route.upstream.Authorization(ctx, req)
	}
	switch {
	case err == nil:
		d.authorization = v
		return d
	case errors.Is(err, upstream.ErrExchangeRefused):
		return d.deny(403, reason.TokenExchangeRefused, err)
	case upstream.IsUnavailable(err):
		return d.deny(503, upstream.Code(err), err)
	}
	return d.denied(verify.Result{}, err) // the client token expires too soon
}

// Label names the decision in metric labels, logs and Envoy's dynamic
// metadata: allow, deny, metadata or preflight.
func (d *Decision) Label() string {
	if d.Kind == Respond && d.Reason == reason.Preflight {
		return "preflight"
	}
	return d.Kind.String()
}

// deny turns d into a deny of status for code.
func (d Decision) deny(status int, code reason.Code, err error) Decision {
	d.Kind, d.Status, d.Reason, d.Err = Deny, status, code, err
	return d
}

// denied maps a verification error to its HTTP status.
func (d Decision) denied(id verify.Result, err error) Decision {
	status := 401
	switch {
	case errors.Is(err, verify.ErrRequestMalformed):
		status = 400
	case errors.Is(err, verify.ErrScopeInsufficient):
		status = 403
	case verify.IsUnavailable(err):
		status = 503
	}
	d.Identity = id
	return d.deny(status, verify.Code(err), err)
}
