package verify

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Claims are the registered and OAuth claims tokengate reads from a JWT.
// They are decoded by decodeClaims: exact member names, no duplicate names,
// scopes split on 0x20 only (see strictjson.go and scope.go). The json tags
// only document the names.
type Claims struct {
	Issuer    string       `json:"iss"`
	Subject   string       `json:"sub"`
	Audience  StringList   `json:"aud"`
	Expiry    *NumericDate `json:"exp"`
	NotBefore *NumericDate `json:"nbf"`
	IssuedAt  *NumericDate `json:"iat"`
	Scope     ScopeList    `json:"scope"`
	Scp       ScopeList    `json:"scp"`
	ClientID  string       `json:"client_id"`
	Azp       string       `json:"azp"`
}

// errWrongType is the detail of a claim of the wrong JSON type.
func errWrongType(claim string) error { return fmt.Errorf("claim %q has the wrong type", claim) }

// decodeClaims reads payload, a JWT claims set, into c. It fails with an
// error wrapping ErrTokenMalformed when payload is not one strict JSON
// object (strictjson.go), a claim tokengate reads has the wrong type, a
// scope is not an RFC 6749 scope-token, or an identity claim (sub,
// client_id, azp) could not be sent as a header value.
func decodeClaims(payload []byte, c *Claims) error {
	return decodeClaimsInto(payload, c, new([3]NumericDate))
}

// decodeClaimsInto is decodeClaims keeping exp, nbf and iat in dates.
func decodeClaimsInto(payload []byte, c *Claims, dates *[3]NumericDate) error {
	err := readClaims(payload, c, dates)
	if err == nil {
		err = checkIdentityValues(c.Subject, c.ClientID, c.Azp)
	}
	if err != nil {
		*c = Claims{}
		return fmt.Errorf("%w: claims: %w", ErrTokenMalformed, err)
	}
	return nil
}

func readClaims(payload []byte, c *Claims, dates *[3]NumericDate) error {
	it, err := newObjectIter(payload)
	if err != nil {
		return err
	}
	for {
		name, escaped, v, ok, err := it.next()
		if err != nil || !ok {
			return err
		}
		if escaped {
			// Rare: an escaped name is compared by its value.
			name = appendUnescaped(nil, name)
		}
		switch string(name) {
		case "iss":
			c.Issuer, err = decodeString(v, "iss")
		case "sub":
			c.Subject, err = decodeString(v, "sub")
		case "aud":
			c.Audience, err = decodeStringList(v, "aud")
		case "exp":
			c.Expiry, err = decodeNumericDateInto(v, "exp", &dates[0])
		case "nbf":
			c.NotBefore, err = decodeNumericDateInto(v, "nbf", &dates[1])
		case "iat":
			c.IssuedAt, err = decodeNumericDateInto(v, "iat", &dates[2])
		case "scope":
			c.Scope, err = decodeScopes(v, "scope")
		case "scp":
			c.Scp, err = decodeScopes(v, "scp")
		case "client_id":
			c.ClientID, err = decodeString(v, "client_id")
		case "azp":
			c.Azp, err = decodeString(v, "azp")
		}
		if err != nil {
			return err
		}
	}
}

// checkIdentityValues refuses identity claims that tokengate could not
// send upstream unchanged (see HeaderSafe), so that a token is never
// accepted without the identity headers it promises.
func checkIdentityValues(sub, clientID, azp string) error {
	switch {
	case !HeaderSafe(sub):
		return errors.New(`claim "sub" cannot be sent as a header value`)
	case !HeaderSafe(clientID):
		return errors.New(`claim "client_id" cannot be sent as a header value`)
	case !HeaderSafe(azp):
		return errors.New(`claim "azp" cannot be sent as a header value`)
	}
	return nil
}

// MaxHeaderValue is the longest identity value tokengate sends upstream.
const MaxHeaderValue = 8 << 10

// HeaderSafe reports whether s can be sent as an HTTP header value exactly
// as it is: at most MaxHeaderValue bytes, no control character other than
// tab (so no CR, LF or NUL), no DEL, and no leading or trailing space or tab
// (which HTTP strips, RFC 9110 section 5.5). The empty string is safe (no
// header is sent).
func HeaderSafe(s string) bool {
	if len(s) > MaxHeaderValue {
		return false
	}
	if s == "" {
		return true
	}
	if s[0] == ' ' || s[0] == '\t' || s[len(s)-1] == ' ' || s[len(s)-1] == '\t' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// decodeString reads a claim that must be a string; null reads as "".
func decodeString(v []byte, claim string) (string, error) {
	switch v[0] {
	case '"':
		return jsonString(v), nil
	case 'n':
		return "", nil
	}
	return "", errWrongType(claim)
}

// decodeStringList reads a string or an array of strings; null reads as
// nil.
func decodeStringList(v []byte, claim string) (StringList, error) {
	switch v[0] {
	case '"':
		return StringList{jsonString(v)}, nil
	case 'n':
		return nil, nil
	case '[':
		l := StringList{}
		for it := newArrayIter(v); ; {
			e, ok, err := it.next()
			if err != nil || !ok {
				return l, err
			}
			if e[0] != '"' {
				return nil, errWrongType(claim)
			}
			l = append(l, jsonString(e))
		}
	}
	return nil, errWrongType(claim)
}

// decodeScopes reads a scope claim: a string of scope-tokens separated by
// spaces (0x20) or an array of scope-tokens; null reads as nil (absent).
func decodeScopes(v []byte, claim string) (ScopeList, error) {
	switch v[0] {
	case '"':
		l, err := ParseScopes(jsonString(v))
		if err != nil {
			return nil, fmt.Errorf("claim %q: %w", claim, err)
		}
		return ScopeList(l), nil
	case 'n':
		return nil, nil
	case '[':
		l := ScopeList{}
		for it := newArrayIter(v); ; {
			e, ok, err := it.next()
			if err != nil || !ok {
				return l, err
			}
			if e[0] != '"' {
				return nil, errWrongType(claim)
			}
			s := jsonString(e)
			if !ValidScopeToken(s) {
				return nil, fmt.Errorf("claim %q: %w", claim, errScopeToken)
			}
			l = append(l, s)
		}
	}
	return nil, errWrongType(claim)
}

// decodeNumericDate reads a NumericDate; null reads as nil (absent).
func decodeNumericDate(v []byte, claim string) (*NumericDate, error) {
	return decodeNumericDateInto(v, claim, new(NumericDate))
}

// decodeNumericDateInto is decodeNumericDate storing the date in d.
func decodeNumericDateInto(v []byte, claim string, d *NumericDate) (*NumericDate, error) {
	if v[0] == 'n' {
		return nil, nil
	}
	if v[0] != '-' && (v[0] < '0' || v[0] > '9') {
		return nil, errWrongType(claim)
	}
	t, ok := numericDate(v)
	if !ok {
		return nil, fmt.Errorf("claim %q is not a NumericDate", claim)
	}
	d.Time = t
	return d, nil
}

// maxNumericDate bounds dates far beyond any token's lifetime (year 36812).
const maxNumericDate = 1 << 40

// numericDate converts v, a JSON number the scanner accepted, to a time:
// seconds since the epoch, possibly fractional, non-negative and at most
// maxNumericDate.
func numericDate(v []byte) (time.Time, bool) {
	// The common case, an integer of at most 13 digits, without strconv.
	if len(v) <= 13 {
		var n int64
		i := 0
		for ; i < len(v) && '0' <= v[i] && v[i] <= '9'; i++ {
			n = n*10 + int64(v[i]-'0')
		}
		if i == len(v) {
			if n > maxNumericDate {
				return time.Time{}, false
			}
			return time.Unix(n, 0), true
		}
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > maxNumericDate {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// StringList is a claim that may be a single string or an array of strings,
// like "aud".
type StringList []string

// UnmarshalJSON accepts a string, an array of strings or null, under the
// strict rules of decodeClaims.
func (l *StringList) UnmarshalJSON(b []byte) error {
	if err := validJSON(b); err != nil {
		return err
	}
	v, err := decodeStringList(trimJSONSpace(b), "")
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// ScopeList is a scope claim: a space-delimited string (RFC 8693 "scope") or
// an array of strings (the "scp" of some identity providers).
type ScopeList []string

// UnmarshalJSON accepts what decodeScopes accepts.
func (l *ScopeList) UnmarshalJSON(b []byte) error {
	if err := validJSON(b); err != nil {
		return err
	}
	v, err := decodeScopes(trimJSONSpace(b), "")
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// NumericDate is a JWT NumericDate: seconds since the epoch, possibly
// fractional.
type NumericDate struct{ time.Time }

// UnmarshalJSON accepts a JSON number (null leaves d unchanged).
func (d *NumericDate) UnmarshalJSON(b []byte) error {
	if err := validJSON(b); err != nil {
		return err
	}
	v, err := decodeNumericDate(trimJSONSpace(b), "")
	if err != nil {
		return err
	}
	if v != nil {
		*d = *v
	}
	return nil
}

// trimJSONSpace removes the JSON white space around a value.
func trimJSONSpace(b []byte) []byte {
	return bytes.Trim(b, " \t\r\n")
}

// scopes returns the token's scopes: "scope", falling back to "scp".
func (c *Claims) scopes() []string {
	if c.Scope != nil {
		return c.Scope
	}
	return c.Scp
}

// clientID returns "client_id", falling back to "azp".
func (c *Claims) clientID() string {
	if c.ClientID != "" {
		return c.ClientID
	}
	return c.Azp
}

// isJSONNumber reports whether b is exactly one JSON number (RFC 8259
// section 6): -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(b []byte) bool {
	i := 0
	digits := func() int {
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i - start
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}
