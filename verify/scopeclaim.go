package verify

import (
	"encoding/json"
	"fmt"
)

// scopeFromClaim reads scopes from a custom claim (space-delimited string or
// array of strings).
func scopeFromClaim(payload []byte, claim string) ([]string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, fmt.Errorf("%w: claims: %s", ErrTokenMalformed, safeJSONError(err))
	}
	raw, ok := m[claim]
	if !ok {
		return nil, nil
	}
	var s ScopeList
	if err := s.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("%w: scope claim has the wrong type", ErrTokenMalformed)
	}
	return s, nil
}
