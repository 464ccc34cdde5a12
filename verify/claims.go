package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"time"
)

// Claims are the registered and OAuth claims tokengate reads from a JWT.
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

// StringList is a claim that may be a single string or an array of strings,
// like "aud".
type StringList []string

// UnmarshalJSON accepts a string or an array of strings.
func (l *StringList) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*l = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		s, ok := plainJSONString(b)
		if !ok {
			if err := json.Unmarshal(b, &s); err != nil {
				return err
			}
		}
		*l = StringList{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return err
	}
	*l = ss
	return nil
}

// ScopeList is a scope claim: a space-delimited string (RFC 8693 "scope") or
// an array of strings (the "scp" of some identity providers).
type ScopeList []string

// UnmarshalJSON accepts a space-delimited string or an array of strings.
func (l *ScopeList) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		s, ok := plainJSONString(b)
		if !ok {
			if err := json.Unmarshal(b, &s); err != nil {
				return err
			}
		}
		*l = strings.Fields(s)
		return nil
	}
	var ss StringList
	if err := ss.UnmarshalJSON(b); err != nil {
		return err
	}
	*l = ScopeList(ss)
	return nil
}

// NumericDate is a JWT NumericDate: seconds since the epoch, possibly
// fractional.
type NumericDate struct{ time.Time }

// UnmarshalJSON accepts a JSON number.
func (d *NumericDate) UnmarshalJSON(b []byte) error {
	var n json.Number
	if len(b) == 0 || b[0] == '"' {
		return errors.New("not a NumericDate")
	}
	if isJSONNumber(b) {
		n = json.Number(b) // what json.Unmarshal would store, without its cost
	} else if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return errors.New("not a NumericDate")
	}
	sec, frac := math.Modf(f)
	d.Time = time.Unix(int64(sec), int64(frac*1e9))
	return nil
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

// plainJSONString returns the value of b, a JSON string, when the value
// is b's bytes between the quotes: printable ASCII without escapes. Else
// it returns false, and json.Unmarshal must decode b. The claims decoder
// calls UnmarshalJSON once per claim, and a nested json.Unmarshal costs a
// scan and a decoder; the strings of real tokens are plain.
func plainJSONString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	for _, c := range b[1 : len(b)-1] {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return "", false
		}
	}
	return string(b[1 : len(b)-1]), true
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
