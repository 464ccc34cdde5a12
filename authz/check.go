package authz

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tokengate/tokengate/verify"
)

// Decision names, used in logs and metric labels.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
	// DecisionMetadata is a protected resource metadata document served
	// by tokengate itself.
	DecisionMetadata = "metadata"
)

// Reasons that are not verification error codes.
const (
	ReasonOK          = "ok"
	ReasonAnonymous   = "anonymous"
	ReasonNoRoute     = "route_not_found"
	ReasonUnknownPin  = "route_unknown"
	ReasonMetadata    = "metadata"
	ReasonNoVerifiers = "verifier_not_found"
)

// Outcome summarizes one Check for observers (metrics, tracing). Every
// field is safe for labels and logs: no token, no subject.
type Outcome struct {
	Route, Verifier string
	// Decision is DecisionAllow, DecisionDeny or DecisionMetadata.
	Decision string
	// Reason is the stable reason code.
	Reason string
	// Status is the HTTP status of a deny or metadata answer (0 on allow).
	Status   int
	Duration time.Duration
}

// Observer is told about every decision, with the Check's context. It must
// not block.
type Observer interface {
	Observe(ctx context.Context, o Outcome)
}

// Service implements envoy.service.auth.v3.Authorization. It reads one
// Policy snapshot per Check; SetPolicy swaps in a new one atomically.
type Service struct {
	authv3.UnimplementedAuthorizationServer

	policy   atomic.Pointer[Policy]
	log      *slog.Logger
	observer Observer
}

// NewService returns a Check service answering with p.
func NewService(p *Policy, log *slog.Logger, obs Observer) *Service {
	if log == nil {
		log = slog.Default()
	}
	s := &Service{log: log, observer: obs}
	s.policy.Store(p)
	return s
}

// SetPolicy swaps in a new policy; Checks in flight finish on the old one.
func (s *Service) SetPolicy(p *Policy) { s.policy.Store(p) }

// Policy returns the policy in use.
func (s *Service) Policy() *Policy { return s.policy.Load() }

// outcome is one decision before it is turned into a CheckResponse.
type outcome struct {
	route    *Route
	verifier string
	reason   string
	status   int // 0 for allow
	err      error
	// The identity of an allow: id, or hit when a token cache entry
	// stands for it (a cached verification, or one just remembered).
	id   *verify.Identity
	hit  *tokenEntry
	body []byte // for a 200 metadata answer
	// req is the request, read on allow to strip any other identity-looking
	// header the client sent.
	req *authv3.AttributeContext_HttpRequest
}

// Check implements the ext_authz v3 Check RPC. It never returns an error:
// every failure is an answer, so Envoy never falls back to its own default.
func (s *Service) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	var start time.Time
	if s.observer != nil {
		start = time.Now()
	}
	p := s.policy.Load()
	out := s.decide(ctx, p, req)
	if out.status == 0 {
		out.req = req.GetAttributes().GetRequest().GetHttp()
	}
	resp := out.response(p)
	routeName := ""
	if out.route != nil {
		routeName = out.route.Name
	}
	decision := DecisionAllow
	switch out.status {
	case 0:
	case 200:
		decision = DecisionMetadata
	default:
		decision = DecisionDeny
	}
	if s.observer != nil {
		s.observer.Observe(ctx, Outcome{
			Route: routeName, Verifier: out.verifier, Decision: decision, Reason: out.reason,
			Status: out.status, Duration: time.Since(start),
		})
	}
	if decision == DecisionDeny && s.log.Enabled(ctx, slog.LevelInfo) {
		attrs := []any{"route", routeName, "status", out.status, "code", out.reason}
		if out.verifier != "" {
			attrs = append(attrs, "verifier", out.verifier)
		}
		if out.err != nil && out.err.Error() != out.reason {
			attrs = append(attrs, "detail", out.err.Error())
		}
		s.log.Info("deny", attrs...)
	}
	return resp, nil
}

func (s *Service) decide(ctx context.Context, p *Policy, req *authv3.CheckRequest) outcome {
	attrs := req.GetAttributes()
	h := attrs.GetRequest().GetHttp()
	reqPath := pathOnly(h.GetPath())
	method := h.GetMethod()

	if method == "GET" && strings.HasPrefix(reqPath, WellKnownPRM) {
		// ".../oauth-protected-resource/mcp/" asks for the same document.
		if r, ok := p.metadata[strings.TrimSuffix(reqPath, "/")]; ok {
			return outcome{route: r, reason: ReasonMetadata, status: 200, body: r.metadataJSON}
		}
	}

	var route *Route
	if pinned, ok := attrs.GetContextExtensions()[RouteContextKey]; ok {
		if route = p.byName[pinned]; route == nil {
			return outcome{reason: ReasonUnknownPin, status: 403}
		}
	} else if route = p.match(hostOnly(h.GetHost()), reqPath, method); route == nil {
		return outcome{reason: ReasonNoRoute, status: 403}
	}
	if route.anonymous {
		return outcome{route: route, reason: ReasonAnonymous}
	}

	raw, err := bearerToken(RequestHeader(h, "authorization"))
	if err != nil {
		return denied(route, "", err)
	}

	// A JWT verified before skips parsing and signature work: the cached
	// verification stands in for its verifier's Verify below, and the
	// route's audience and scopes are checked on it as usual.
	var (
		key   tokenKey
		keyed bool
		hit   *tokenEntry
		tok   *verify.Token // parsed on first need
	)
	if p.tokens != nil && len(route.jwt) > 0 && jwsShaped(raw) {
		key, keyed = newTokenKey(raw), true
		hit = p.tokens.get(&key)
	}
	parsed := func() *verify.Token {
		if tok == nil {
			tok = verify.ParseToken(raw)
		}
		return tok
	}

	var (
		scopeFail   bool // an identity lacked the route's scopes
		scopeFailBy string
		unavailable error
		firstErr    error
		firstName   string
		tried       bool
	)
	// try offers the token to b's verifier, or to the cache entry when b's
	// verifier is the one that accepted it. An allow has its identity in
	// the returned outcome's id or hit.
	try := func(b binding) (outcome, bool) {
		tried = true
		var (
			id  *verify.Identity
			e   *tokenEntry
			err error
		)
		if hit != nil && b.v == hit.verifier() {
			if err = hit.checkAudience(p.tokens, b.audiences); err == nil {
				e = hit
			}
		} else {
			cj, cacheable := b.v.(cacheableJWT)
			cacheable = cacheable && keyed && b.v.Kind() == verify.KindJWT
			var keys verify.KeysVersion
			if cacheable {
				// Read before Verify: should the keys change meanwhile, the
				// entry is already stale rather than vouched for by keys
				// that may not hold the signing key.
				keys = cj.KeysVersion()
			}
			t := parsed()
			id, err = b.v.Verify(ctx, t, b.audiences)
			if err == nil && cacheable {
				e = p.tokens.put(key, cj, keys, t, id)
			}
		}
		if err != nil {
			if verify.IsUnavailable(err) {
				if unavailable == nil {
					unavailable = err
					firstName = b.v.Name()
				}
			} else if firstErr == nil {
				firstErr = err
				if unavailable == nil {
					firstName = b.v.Name()
				}
			}
			return outcome{}, false
		}
		verifier := ""
		if e != nil {
			verifier = e.verifier().Name()
			if !e.hasScopes(route.required) {
				if !scopeFail {
					scopeFail, scopeFailBy = true, verifier
				}
				return outcome{}, false
			}
			return outcome{route: route, verifier: verifier, reason: ReasonOK, hit: e}, true
		}
		if !hasAll(id.Scopes, route.required) {
			if !scopeFail {
				scopeFail, scopeFailBy = true, id.Verifier
			}
			return outcome{}, false
		}
		return outcome{route: route, verifier: id.Verifier, reason: ReasonOK, id: id}, true
	}
	looksJWT, iss := true, ""
	if hit != nil {
		iss = hit.verifier().Issuer()
	} else {
		t := parsed()
		looksJWT = t.LooksLikeJWT()
		if t.Claims != nil {
			iss = t.Claims.Issuer
		}
	}
	if looksJWT {
		for _, b := range route.jwt {
			if b.v.Issuer() == iss {
				if out, ok := try(b); ok {
					return out
				}
			}
		}
	}
	if !tried {
		for _, b := range route.other {
			if out, ok := try(b); ok {
				return out
			}
		}
	}
	tok = parsed()
	switch {
	case scopeFail:
		return outcome{route: route, verifier: scopeFailBy, reason: verify.Code(verify.ErrScopeInsufficient), status: 403, err: verify.ErrScopeInsufficient}
	case unavailable != nil:
		return denied(route, firstName, unavailable)
	case firstErr != nil:
		return denied(route, firstName, firstErr)
	case tok.LooksLikeJWT() && len(route.jwt) > 0:
		if err := tok.Malformed(); err != nil {
			return denied(route, "", err)
		}
		return denied(route, "", verify.ErrIssuerUntrusted)
	default:
		return denied(route, "", verify.ErrTokenMalformed)
	}
}

// denied maps a verification error to its HTTP status.
func denied(route *Route, verifier string, err error) outcome {
	status := 401
	switch {
	case errors.Is(err, verify.ErrRequestMalformed):
		status = 400
	case errors.Is(err, verify.ErrScopeInsufficient):
		status = 403
	case verify.IsUnavailable(err):
		status = 503
	}
	return outcome{route: route, verifier: verifier, reason: verify.Code(err), status: status, err: err}
}

func hasAll(have, want []string) bool {
	for _, w := range want {
		if !contains(have, w) {
			return false
		}
	}
	return true
}

// RequestHeader returns the value of the request header name (lower case).
// Envoy sends the headers map, or, when the ext_authz filter sets
// encode_raw_headers, header_map instead; there a repeated header stays
// separate, and its values are joined with "," as in the map.
func RequestHeader(h *authv3.AttributeContext_HttpRequest, name string) string {
	if v, ok := h.GetHeaders()[name]; ok {
		return v
	}
	var values []string
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		if !strings.EqualFold(hv.GetKey(), name) {
			continue
		}
		v := hv.GetValue()
		if raw := hv.GetRawValue(); len(raw) > 0 {
			v = string(raw)
		}
		values = append(values, v)
	}
	return strings.Join(values, ",")
}

// bearerToken extracts the token from an Authorization header value.
// Another scheme counts as no token; "Bearer" without exactly one token is
// a malformed request.
func bearerToken(h string) (string, error) {
	if h == "" {
		return "", verify.ErrTokenMissing
	}
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "bearer") {
		return "", verify.ErrTokenMissing
	}
	tok := strings.TrimLeft(rest, " ")
	if len(tok) > verify.MaxTokenSize {
		return "", verify.ErrTokenTooLarge
	}
	if tok == "" {
		return "", errors.Join(verify.ErrRequestMalformed, errors.New("empty bearer token"))
	}
	if !isB64Token(tok) {
		return "", errors.Join(verify.ErrRequestMalformed, errors.New("bearer token has invalid characters or is not one token"))
	}
	return tok, nil
}

// isB64Token reports whether s is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for i < len(s) && b64TokenChar[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// b64TokenChar marks the bytes of an RFC 6750 b64token before its padding.
// A table lookup per byte: this scan runs over every token on every Check.
var b64TokenChar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()
