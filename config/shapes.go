package config

import (
	"fmt"
	"slices"
	"strings"
)

// registeredClaims are checked by tokengate itself (issuer/issuers,
// audiences, the clock): required_claims may not pin them.
var registeredClaims = []string{"iss", "aud", "exp", "nbf", "iat"}

// shape validates a jwt verifier's identity-provider keys (contract
// section 13): issuers, scope_claims, audience_claim, required_claims.
func (v *validator) shape(p string, vc Verifier) {
	if vc.Issuer != "" && len(vc.Issuers) > 0 {
		v.add(p+".issuers", "set issuer or issuers, not both")
	}
	for i, iss := range vc.Issuers {
		switch {
		case iss == "":
			v.add(fmt.Sprintf("%s.issuers[%d]", p, i), "must not be empty")
		case slices.Index(vc.Issuers, iss) < i:
			v.add(fmt.Sprintf("%s.issuers[%d]", p, i), fmt.Sprintf("duplicate issuer %q", iss))
		}
	}
	if len(vc.ScopeClaims) > 0 && vc.ScopeClaim != "" {
		v.add(p+".scope_claims", "set scope_claim or scope_claims, not both")
	}
	for i, c := range vc.ScopeClaims {
		if !claimName(c) {
			v.add(fmt.Sprintf("%s.scope_claims[%d]", p, i), "must be a claim name")
		}
	}
	if vc.AudienceClaim != "" && !claimName(vc.AudienceClaim) {
		v.add(p+".audience_claim", "must be a claim name")
	}
	names := make([]string, 0, len(vc.RequiredClaims))
	for name := range vc.RequiredClaims {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		switch {
		case !claimName(name):
			v.add(p+".required_claims."+name, "must be a claim name")
		case slices.Contains(registeredClaims, name):
			v.add(p+".required_claims."+name, "is checked by tokengate itself (issuer or issuers, audiences, the clock): not in required_claims")
		case len(vc.RequiredClaims[name]) == 0:
			v.add(p+".required_claims."+name, "needs a value or a list of values")
		case slices.Contains(vc.RequiredClaims[name], ""):
			v.add(p+".required_claims."+name, "values must not be empty")
		}
	}
}

// jwtOnly reports the identity-provider keys on a verifier that is not a
// jwt verifier.
func (v *validator) jwtOnly(p string, vc Verifier) {
	for _, k := range []struct {
		key string
		set bool
	}{
		{"issuers", len(vc.Issuers) > 0}, {"scope_claims", len(vc.ScopeClaims) > 0},
		{"audience_claim", vc.AudienceClaim != ""}, {"required_claims", len(vc.RequiredClaims) > 0},
	} {
		if k.set {
			v.add(p+"."+k.key, "applies to jwt verifiers only")
		}
	}
}

// claimName reports whether s can name a top-level claim: not empty and
// without white space (namespaced claims such as Auth0's
// "https://example.com/roles" are names too).
func claimName(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\r\n")
}
