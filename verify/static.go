package verify

import (
	"context"
	"crypto/subtle"
	"fmt"
	"slices"
)

// StaticIdentity is the identity a static development token stands for.
type StaticIdentity struct {
	Subject string
	Scopes  []string
}

// Static accepts a fixed list of tokens. It is meant for development: the
// tokens never expire and carry no audience, so no audience is checked.
type Static struct {
	name   string
	hashes []cacheKey
	ids    []*Identity
}

// NewStatic builds a static verifier from token values and their identities.
// Its errors are *OptionError with the key "tokens" and never contain a
// token.
func NewStatic(name string, tokens map[string]StaticIdentity) (*Static, error) {
	if len(tokens) == 0 {
		return nil, optionErr("tokens", "at least one token is required")
	}
	v := &Static{name: name}
	for tok, si := range tokens {
		if tok == "" {
			return nil, optionErr("tokens", "a token must not be empty")
		}
		if !HeaderSafe(si.Subject) {
			return nil, optionErr("tokens", "a sub cannot be sent as a header value (control character, space at either end, or longer than 8 KiB)")
		}
		for _, sc := range si.Scopes {
			if !ValidScopeToken(sc) {
				return nil, optionErr("tokens", "scope %q is not an RFC 6749 scope-token (printable ASCII without space, \" or \\)", sc)
			}
		}
		v.hashes = append(v.hashes, hashToken(tok))
		v.ids = append(v.ids, &Identity{Verifier: name, Subject: si.Subject, Scopes: slices.Clone(si.Scopes)})
	}
	return v, nil
}

// Name implements Verifier.
func (v *Static) Name() string { return v.name }

// Kind implements Verifier.
func (v *Static) Kind() Kind { return KindStatic }

// Issuer implements Verifier: static tokens have no issuer.
func (v *Static) Issuer() string { return "" }

// Ready implements Verifier: the tokens are known from the start.
func (v *Static) Ready() bool { return true }

// Start implements Verifier; there is no background work.
func (v *Static) Start(context.Context) {}

// Verify implements Verifier. It compares the SHA-256 of the token with that
// of every configured token in constant time and visits all of them, so
// neither the time taken nor the token lengths reveal which one (if any)
// matched. An unknown token wraps ErrTokenInactive. The returned Identity is
// shared: do not modify it.
func (v *Static) Verify(_ context.Context, t *Token, _ []string) (*Identity, error) {
	h := hashToken(t.Raw)
	match := -1
	for i := range v.hashes {
		eq := subtle.ConstantTimeCompare(h[:], v.hashes[i][:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return nil, fmt.Errorf("%w: not a known static token", ErrTokenInactive)
	}
	return v.ids[match], nil
}
