package keys

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwt"
)

// protectedClaims are claims Mint sets itself and extra claims may not set.
var protectedClaims = []string{
	jwt.IssuerKey, jwt.SubjectKey, jwt.AudienceKey, jwt.ExpirationKey, jwt.IssuedAtKey,
}

// scopeClaim is the claim carrying MintOptions.Scope.
const scopeClaim = "scope"

// cnfClaim is the confirmation claim carrying MintOptions.CnfJKT and CnfX5T
// (RFC 7800; members jkt of RFC 9449 and x5t#S256 of RFC 8705).
const cnfClaim = "cnf"

// claimValue is one claim Mint sets itself.
type claimValue struct {
	name string
	v    any
}

// buildToken assembles the claim set described by o.
func buildToken(o MintOptions) (jwt.Token, error) {
	if o.Issuer == "" {
		return nil, errors.New("issuer (iss) is required")
	}
	if o.Subject == "" {
		return nil, errors.New("subject (sub) is required")
	}
	if len(o.Audience) == 0 {
		return nil, errors.New("at least one audience (aud) is required")
	}
	for _, a := range o.Audience {
		if a == "" {
			return nil, errors.New("audience (aud) entries must not be empty")
		}
	}
	ttl := o.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < 0 {
		return nil, fmt.Errorf("ttl must be positive, got %s", ttl)
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}

	tok := jwt.New()
	// One audience is serialized as a plain string rather than an array.
	tok.Options().Enable(jwt.FlattenAudience)
	for _, name := range slices.Sorted(maps.Keys(o.Claims)) {
		if err := checkExtraClaim(name, o); err != nil {
			return nil, err
		}
		if err := tok.Set(name, o.Claims[name]); err != nil {
			return nil, fmt.Errorf("claim %q: %w", name, err)
		}
	}
	std := []claimValue{
		{jwt.IssuerKey, o.Issuer},
		{jwt.SubjectKey, o.Subject},
		{jwt.AudienceKey, o.Audience},
		{jwt.IssuedAtKey, now},
		{jwt.ExpirationKey, now.Add(ttl)},
	}
	if o.Scope != "" {
		std = append(std, claimValue{scopeClaim, o.Scope})
	}
	if cnf := confirmation(o); cnf != nil {
		std = append(std, claimValue{cnfClaim, cnf})
	}
	for _, c := range std {
		if err := tok.Set(c.name, c.v); err != nil {
			return nil, fmt.Errorf("claim %q: %w", c.name, err)
		}
	}
	return tok, nil
}

// confirmation returns the cnf claim for o, or nil when o binds nothing.
func confirmation(o MintOptions) map[string]any {
	if o.CnfJKT == "" && o.CnfX5T == "" {
		return nil
	}
	cnf := map[string]any{}
	if o.CnfJKT != "" {
		cnf["jkt"] = o.CnfJKT
	}
	if o.CnfX5T != "" {
		cnf["x5t#S256"] = o.CnfX5T
	}
	return cnf
}

// checkExtraClaim rejects extra claims that would replace a claim Mint sets.
func checkExtraClaim(name string, o MintOptions) error {
	if name == "" {
		return errors.New("extra claim name must not be empty")
	}
	for _, p := range protectedClaims {
		if name == p {
			return fmt.Errorf("extra claim %q may not override the standard claim", name)
		}
	}
	if name == scopeClaim && o.Scope != "" {
		return fmt.Errorf("extra claim %q conflicts with the scope option", name)
	}
	if name == cnfClaim && confirmation(o) != nil {
		return fmt.Errorf("extra claim %q conflicts with the cnf options", name)
	}
	return nil
}
