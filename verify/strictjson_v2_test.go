//go:build goexperiment.jsonv2

// The differential test of the strict claims decoder against
// encoding/json/v2, which Go 1.26 builds only with GOEXPERIMENT=jsonv2:
// `make test` runs it so (GOEXPERIMENT=jsonv2 go test -run JSONv2 ./verify/).

package verify_test

import (
	"encoding/base64"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/verify"
)

// refClaims decodes a claims set with encoding/json/v2's default semantics
// (RFC 7493: exact member names, duplicate names and invalid UTF-8
// refused), then applies tokengate's claim rules: the reference the strict
// decoder must agree with.
func refClaims(b []byte) (*verify.Claims, error) {
	if !jsontext.Value(b).IsValid() {
		return nil, errors.New("invalid per json/v2")
	}
	var m map[string]jsontext.Value
	if err := jsonv2.Unmarshal(b, &m); err != nil {
		return nil, err // not an object
	}
	var c verify.Claims
	var err error
	str := func(name string, dst *string) {
		v, ok := m[name]
		if !ok || err != nil {
			return
		}
		switch v.Kind() {
		case '"':
			err = jsonv2.Unmarshal(v, dst)
		case 'n':
		default:
			err = errors.New("wrong type")
		}
	}
	strs := func(name string) []string {
		v, ok := m[name]
		if !ok || err != nil {
			return nil
		}
		switch v.Kind() {
		case '"':
			var s string
			err = jsonv2.Unmarshal(v, &s)
			return []string{s}
		case '[':
			var elems []jsontext.Value
			if err = jsonv2.Unmarshal(v, &elems); err != nil {
				return nil
			}
			out := []string{}
			for _, e := range elems {
				if e.Kind() != '"' {
					err = errors.New("wrong type")
					return nil
				}
				var s string
				if err = jsonv2.Unmarshal(e, &s); err != nil {
					return nil
				}
				out = append(out, s)
			}
			return out
		case 'n':
			return nil
		}
		err = errors.New("wrong type")
		return nil
	}
	date := func(name string) *verify.NumericDate {
		v, ok := m[name]
		if !ok || err != nil {
			return nil
		}
		switch v.Kind() {
		case 'n':
			return nil
		case '0':
			var f float64
			if err = jsonv2.Unmarshal(v, &f); err != nil {
				return nil
			}
			if f < 0 || f > 1<<40 {
				err = errors.New("out of range")
				return nil
			}
			sec, frac := math.Modf(f)
			return &verify.NumericDate{Time: time.Unix(int64(sec), int64(frac*1e9))}
		}
		err = errors.New("wrong type")
		return nil
	}
	scopes := func(name string) verify.ScopeList {
		v, isString := m[name]
		isString = isString && v.Kind() == '"'
		l := strs(name)
		if err != nil || l == nil {
			return nil
		}
		if !isString {
			for _, s := range l {
				if !verify.ValidScopeToken(s) {
					err = errors.New("scope-token")
				}
			}
			return l
		}
		out := verify.ScopeList{}
		for _, s := range strings.Split(l[0], " ") {
			if s == "" {
				continue
			}
			if !verify.ValidScopeToken(s) {
				err = errors.New("scope-token")
			}
			out = append(out, s)
		}
		return out
	}
	str("iss", &c.Issuer)
	str("sub", &c.Subject)
	c.Audience = strs("aud")
	c.Expiry, c.NotBefore, c.IssuedAt = date("exp"), date("nbf"), date("iat")
	c.Scope, c.Scp = scopes("scope"), scopes("scp")
	str("client_id", &c.ClientID)
	str("azp", &c.Azp)
	if err != nil {
		return nil, err
	}
	for _, v := range []string{c.Subject, c.ClientID, c.Azp} {
		if !verify.HeaderSafe(v) {
			return nil, errors.New("identity value")
		}
	}
	return &c, nil
}

// refHeader reads alg, kid, typ and crit/b64 the same way.
func refHeader(b []byte) (alg, kid, typ string, crit, jws bool, err error) {
	if !jsontext.Value(b).IsValid() {
		return "", "", "", false, false, errors.New("invalid per json/v2")
	}
	var m map[string]jsontext.Value
	if err := jsonv2.Unmarshal(b, &m); err != nil {
		return "", "", "", false, false, err
	}
	if v, ok := m["alg"]; !ok || v.Kind() != '"' {
		return "", "", "", false, false, errors.New("no alg")
	}
	_ = jsonv2.Unmarshal(m["alg"], &alg)
	for name, dst := range map[string]*string{"kid": &kid, "typ": &typ} {
		if v, ok := m[name]; ok {
			if v.Kind() != '"' {
				return alg, "", "", false, true, errors.New(name + " not a string")
			}
			_ = jsonv2.Unmarshal(v, dst)
		}
	}
	_, c := m["crit"]
	_, b64 := m["b64"]
	return alg, kid, typ, c || b64, true, nil
}

// differentialCorpus is the fuzz corpus of FuzzParseToken and FuzzVerify
// (their headers and payloads), the examples, and variants of each
// seed payload with a member name's case changed, a member duplicated, a
// name escaped, and scopes separated by other white space.
func differentialCorpus(t testing.TB) (payloads, headers [][]byte) {
	_, valid, others := fuzzSeeds(t)
	for _, tok := range slices.Concat(valid, others) {
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			continue
		}
		if h, err := base64.RawURLEncoding.DecodeString(parts[0]); err == nil {
			headers = append(headers, h)
		}
		if p, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			payloads = append(payloads, p)
		}
	}
	for _, s := range claimExamples {
		payloads = append(payloads, []byte(s))
	}
	for _, s := range headerExamples {
		headers = append(headers, []byte(s))
	}
	var variants [][]byte
	for _, p := range payloads {
		s := string(p)
		for _, name := range []string{"iss", "sub", "aud", "exp", "scope", "scp", "azp"} {
			q := `"` + name + `":`
			if !strings.Contains(s, q) {
				continue
			}
			variants = append(variants,
				[]byte(strings.Replace(s, q, `"`+strings.ToUpper(name)+`":`, 1)),
				[]byte(strings.Replace(s, q, `"`+name+`":null,`+q, 1)),
				[]byte(strings.Replace(s, q, `"\u00`+hex2(name[0])+name[1:]+`":`, 1)),
				[]byte(strings.Replace(s, q, `"`+strings.ReplaceAll(name, "s", "ſ")+`":`, 1)),
			)
		}
		for _, sep := range []string{"\u00a0", "\u2003", "\u0085", "\t", "\n", "  "} {
			variants = append(variants, []byte(strings.ReplaceAll(s, "mcp:read mcp:write", "mcp:read"+sep+"mcp:write")))
		}
	}
	return append(payloads, variants...), headers
}

func hex2(c byte) string { return string("0123456789abcdef"[c>>4]) + string("0123456789abcdef"[c&15]) }

// TestJSONv2DifferentialClaims: over the corpus, ParseToken accepts a
// payload exactly when the json/v2 reference does, with the same claims.
func TestJSONv2DifferentialClaims(t *testing.T) {
	payloads, headers := differentialCorpus(t)
	for _, p := range payloads {
		checkClaimsDifferential(t, p)
	}
	for _, h := range headers {
		checkHeaderDifferential(t, h)
	}
}

// FuzzJSONv2DifferentialClaims: the same over arbitrary payloads.
func FuzzJSONv2DifferentialClaims(f *testing.F) {
	payloads, _ := differentialCorpus(f)
	for _, p := range payloads {
		f.Add(p)
	}
	f.Fuzz(checkClaimsDifferential)
}

// FuzzJSONv2DifferentialHeader: the same for protected headers.
func FuzzJSONv2DifferentialHeader(f *testing.F) {
	_, headers := differentialCorpus(f)
	for _, h := range headers {
		f.Add(h)
	}
	f.Fuzz(checkHeaderDifferential)
}

func checkClaimsDifferential(t *testing.T, payload []byte) {
	t.Helper()
	raw := b64([]byte(`{"alg":"ES256"}`)) + "." + b64(payload) + "."
	tok := verify.ParseToken(raw)
	want, wantErr := refClaims(payload)
	err := tok.Malformed()
	if wantErr != nil {
		require.Errorf(t, err, "json/v2 refuses %q (%v), the strict decoder accepts it", payload, wantErr)
		require.ErrorIs(t, err, verify.ErrTokenMalformed)
		return
	}
	require.NoErrorf(t, err, "json/v2 accepts %q, the strict decoder refuses it", payload)
	require.Equalf(t, *want, *tok.Claims, "claims of %q", payload)
}

func checkHeaderDifferential(t *testing.T, header []byte) {
	t.Helper()
	raw := b64(header) + "." + b64([]byte(`{}`)) + "."
	tok := verify.ParseToken(raw)
	alg, kid, typ, crit, jws, wantErr := refHeader(header)
	require.Equalf(t, jws, tok.JWS, "JWS of header %q", header)
	err := tok.Malformed()
	if wantErr != nil {
		require.ErrorIsf(t, err, verify.ErrTokenMalformed, "json/v2 refuses header %q (%v)", header, wantErr)
		return
	}
	require.NoErrorf(t, err, "header %q", header)
	require.Equal(t, []any{alg, kid, typ, crit}, []any{tok.Alg, tok.Kid, tok.Typ, tok.Crit}, "header %q", header)
}
