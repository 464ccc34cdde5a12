package authz

import (
	"errors"
	"strings"

	"github.com/tokengate/tokengate/verify"
)

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
