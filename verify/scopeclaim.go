package verify

import "fmt"

// scopeFromClaim reads scopes from a custom claim (space-delimited string or
// array of strings), by exact name, from payload, which must be one strict
// JSON object (strictjson.go).
func scopeFromClaim(payload []byte, claim string) ([]string, error) {
	var scopes ScopeList
	err := eachMember(payload, func(name, v []byte) error {
		if string(name) != claim {
			return nil
		}
		var err error
		scopes, err = decodeScopes(v, claim)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrTokenMalformed, err)
	}
	return scopes, nil
}
