package verify

import (
	"errors"
	"strings"
)

// errScopeToken is the detail of a scope that is not an RFC 6749 scope-token.
var errScopeToken = errors.New("scope is not an RFC 6749 scope-token")

// ValidScopeToken reports whether s is an RFC 6749 section 3.3 scope-token:
// one or more of %x21 / %x23-5B / %x5D-7E (printable ASCII except space,
// double quote and backslash).
func ValidScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// ParseScopes splits a scope string on spaces (0x20) only, as RFC 6749
// section 3.3 says: no other white space separates scopes. Runs of spaces,
// and spaces at either end, separate nothing. Every token must be a
// scope-token, else ParseScopes fails: "a\u00a0b", "a\tb" or "a\nb" are
// refused, never split. The empty string gives an empty, non-nil list
// (present but empty).
func ParseScopes(s string) ([]string, error) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			continue
		}
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return nil, errScopeToken
		}
		if i == 0 || s[i-1] == ' ' {
			n++
		}
	}
	out := make([]string, 0, n)
	for f := range strings.SplitSeq(s, " ") {
		if f != "" {
			out = append(out, f)
		}
	}
	return out, nil
}
