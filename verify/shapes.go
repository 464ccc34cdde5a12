package verify

import (
	"encoding/json"

	"fmt"
	"slices"
	"sort"

	"github.com/tokengate/tokengate/reason"
)

// ErrClaimMismatch: a claim that required_claims pins is missing or has
// another value (for example Entra ID's "tid" of another tenant).
var ErrClaimMismatch = newError(reason.ClaimMismatch)

// shape is how a jwt verifier reads an identity provider's tokens beyond
// the defaults (contract section 13).
type shape struct {
	// scopeClaims: scopes are the union of these claims (a string is
	// space-delimited, an array lists them).
	scopeClaims []string
	// audClaim is the claim the audience check reads instead of "aud".
	audClaim string
	// required claims, sorted by name.
	required []requiredClaim
}

type requiredClaim struct {
	name   string
	values []string // the claim (or, for an array claim, one item) must be one of these
}

// setShape sets the issuers and the shape from o and returns the issuer to
// discover keys from ("" when none is discoverable).
func (v *JWT) setShape(o JWTOptions) (string, error) {
	switch {
	case o.Issuer != "" && len(o.Issuers) > 0:
		return "", optionErr("issuers", "set issuer or issuers, not both")
	case len(o.Issuers) > 0:
		for i, iss := range o.Issuers {
			if iss == "" {
				return "", optionErr(fmt.Sprintf("issuers[%d]", i), "must not be empty")
			}
		}
		v.issuers = slices.Clone(o.Issuers)
	case o.Issuer != "":
		v.issuers = []string{o.Issuer}
	default:
		return "", optionErr("issuer", "is required")
	}
	v.issuer = v.issuers[0]
	discovery := v.issuer
	if len(v.issuers) > 1 && o.Keys.kind == sourceDiscover {
		discovery = DiscoveryIssuer(v.issuers, o.Remote.AllowInsecureHTTP)
		if discovery == "" {
			return "", optionErr("issuers", "none is a URL to discover jwks_uri from; set jwks_uri")
		}
	}

	if len(o.ScopeClaims) == 0 && o.AudienceClaim == "" && len(o.RequiredClaims) == 0 {
		return discovery, nil
	}
	if len(o.ScopeClaims) > 0 && o.ScopeClaim != "" {
		return "", optionErr("scope_claims", "set scope_claim or scope_claims, not both")
	}
	sh := &shape{audClaim: o.AudienceClaim}
	for i, c := range o.ScopeClaims {
		if c == "" {
			return "", optionErr(fmt.Sprintf("scope_claims[%d]", i), "must not be empty")
		}
		if !slices.Contains(sh.scopeClaims, c) {
			sh.scopeClaims = append(sh.scopeClaims, c)
		}
	}
	if len(sh.scopeClaims) == 0 {
		if o.ScopeClaim != "" && o.ScopeClaim != "scope" {
			sh.scopeClaims = []string{o.ScopeClaim}
		}
	}
	for name, values := range o.RequiredClaims {
		if name == "" {
			return "", optionErr("required_claims", "a claim name must not be empty")
		}
		if len(values) == 0 {
			return "", optionErr("required_claims."+name, "needs a value or a list of values")
		}
		sh.required = append(sh.required, requiredClaim{name: name, values: slices.Clone(values)})
	}
	sort.Slice(sh.required, func(i, j int) bool { return sh.required[i].name < sh.required[j].name })
	v.shape = sh
	return discovery, nil
}

// DiscoveryIssuer is the first of issuers that keys can be discovered from
// (an https URL, or http on loopback or with allowInsecure), or "".
func DiscoveryIssuer(issuers []string, allowInsecure bool) string {
	for _, iss := range issuers {
		if _, err := DiscoveryURLs(iss); err == nil && CheckURL(iss, allowInsecure) == nil {
			return iss
		}
	}
	return ""
}

// Issuers returns every "iss" value the verifier accepts.
func (v *JWT) Issuers() []string { return slices.Clone(v.issuers) }

// AcceptsIssuer reports whether iss is one of the verifier's issuers: the
// route offers a JWT to the jwt verifiers that accept its issuer.
func (v *JWT) AcceptsIssuer(iss string) bool {
	if iss == v.issuer {
		return true
	}
	for _, i := range v.issuers[1:] {
		if i == iss {
			return true
		}
	}
	return false
}

// TokenAudience returns the audiences of a token this verifier accepted,
// read from its audience claim ("aud" unless audience_claim says
// otherwise); payload is the verified claims. The token cache re-checks
// these on a hit.
func (v *JWT) TokenAudience(t *Token, payload []byte) ([]string, error) {
	if v.shape == nil || v.shape.audClaim == "" {
		if t.Claims == nil {
			return nil, ErrTokenMalformed
		}
		return t.Claims.Audience, nil
	}
	claims, err := claimMap(payload)
	if err != nil {
		return nil, err
	}
	return stringClaim(claims, v.shape.audClaim)
}

// check applies the shape to a token whose signature verified and returns
// its scopes.
func (sh *shape) check(v *JWT, c *Claims, payload []byte, audiences []string) ([]string, error) {
	claims, err := claimMap(payload)
	if err != nil {
		return nil, err
	}
	if sh.audClaim != "" {
		aud, err := stringClaim(claims, sh.audClaim)
		if err != nil {
			return nil, err
		}
		if err := v.checkAudience(aud, audiences); err != nil {
			return nil, err
		}
	}
	for _, rc := range sh.required {
		raw, ok := claims[rc.name]
		if !ok {
			return nil, fmt.Errorf("%w: %s is missing", ErrClaimMismatch, rc.name)
		}
		var got StringList
		if err := got.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("%w: %s is not a string or an array of strings", ErrClaimMismatch, rc.name)
		}
		if !slices.ContainsFunc(got, func(s string) bool { return slices.Contains(rc.values, s) }) {
			return nil, fmt.Errorf("%w: %s has another value", ErrClaimMismatch, rc.name)
		}
	}
	if len(sh.scopeClaims) == 0 {
		return c.scopes(), nil
	}
	var scopes []string
	for _, name := range sh.scopeClaims {
		raw, ok := claims[name]
		if !ok {
			continue
		}
		var s ScopeList
		if err := s.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("%w: scope claim %s has the wrong type", ErrTokenMalformed, name)
		}
		for _, sc := range s {
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	return scopes, nil
}

func claimMap(payload []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, fmt.Errorf("%w: claims: %s", ErrTokenMalformed, safeJSONError(err))
	}
	return m, nil
}

// stringClaim reads a string or array-of-strings claim for the audience
// check; a missing or wrongly typed claim is an audience mismatch.
func stringClaim(claims map[string]json.RawMessage, name string) ([]string, error) {
	raw, ok := claims[name]
	if !ok {
		return nil, fmt.Errorf("%w: no %s claim", ErrAudienceMismatch, name)
	}
	var l StringList
	if err := l.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("%w: %s is not a string or an array of strings", ErrAudienceMismatch, name)
	}
	return l, nil
}

// acceptsIssuer reports whether a JWT whose (unverified) "iss" is iss is
// offered to v: one of its issuers (`issuers`), else its issuer.
func acceptsIssuer(v Verifier, iss string) bool {
	if a, ok := v.(interface{ AcceptsIssuer(string) bool }); ok {
		return a.AcceptsIssuer(iss)
	}
	return v.Issuer() == iss
}

// tokenAudience is what the token cache remembers as the audience of a
// token v accepted (the values of its audience claim), or false if it
// cannot tell. A cache hit re-checks the same audience the verifier did.
func tokenAudience(v cacheableJWT, t *Token, id *Identity) ([]string, bool) {
	if a, ok := v.(interface {
		TokenAudience(*Token, []byte) ([]string, error)
	}); ok {
		aud, err := a.TokenAudience(t, id.Payload)
		return aud, err == nil
	}
	return t.Claims.Audience, true
}
