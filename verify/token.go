package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
)

// MaxTokenSize is the largest bearer token tokengate reads. Longer tokens are
// rejected before any parsing.
const MaxTokenSize = 16 << 10

// Token is a bearer token parsed once per request, before any verifier sees
// it. For a JWS-shaped token the header fields and the claims are decoded but
// NOT verified: they only steer the choice of verifier and the cheap checks
// that run before signature work.
type Token struct {
	// Raw is the token as sent. Never log it.
	Raw string
	// JWS reports whether Raw is a compact JWS whose header and payload decode.
	JWS bool
	// Alg, Kid and Typ are the protected header's values.
	Alg, Kid, Typ string
	// Crit reports whether the header carries a "crit" parameter.
	Crit bool
	// Claims are the unverified claims of a JWS-shaped token.
	Claims *Claims
	// Payload is the decoded (unverified) payload of a JWS-shaped token.
	Payload []byte
	// malformed explains why a token that looks like a JWS does not decode.
	malformed error
	// compact is Raw as bytes, kept for signature verification so that the
	// token is copied once per request, not once per verifier.
	compact []byte
}

// ParseToken splits and decodes raw without verifying anything. It never
// fails: an opaque token is returned with JWS false, and a token that looks
// like a JWS but does not decode remembers why, for the JWT verifiers.
func ParseToken(raw string) *Token {
	if strings.Count(raw, ".") != 2 {
		return &Token{Raw: raw}
	}
	// One allocation holds the token, its claims and their dates, and one
	// more the token's bytes and its decoded payload: a request parses one
	// token, and every allocation on this path is paid per request.
	st := new(parsedToken)
	t := &st.t
	t.Raw = raw
	buf := make([]byte, len(raw)+base64.RawURLEncoding.DecodedLen(len(raw)))
	compact := buf[:len(raw):len(raw)]
	copy(compact, raw)
	hdr, payload, sig, err := jwsbb.SplitCompact(compact)
	if err != nil {
		t.malformed = fmt.Errorf("%w: not a compact JWS", ErrTokenMalformed)
		return t
	}
	if err := t.parseHeader(hdr); err != nil {
		t.malformed = err
		return t
	}
	if !canonicalBase64URL(sig) {
		// Only one spelling of a signature is accepted, so that a valid
		// token cannot be varied into other strings that also verify.
		t.malformed = fmt.Errorf("%w: signature is not canonical base64url", ErrTokenMalformed)
		return t
	}
	// Decode straight from the segment: DecodeString(string(payload)) would
	// copy the payload once more.
	dst := buf[len(raw):]
	n, err := base64.RawURLEncoding.Decode(dst, payload)
	if err != nil {
		t.malformed = fmt.Errorf("%w: payload is not base64url", ErrTokenMalformed)
		return t
	}
	t.Payload = dst[:n:n]
	t.compact = compact
	if err := decodeClaimsInto(t.Payload, &st.c, &st.dates); err != nil {
		t.malformed = err
		return t
	}
	t.Claims = &st.c
	return t
}

// parsedToken is what ParseToken allocates for a JWS-shaped token.
type parsedToken struct {
	t     Token
	c     Claims
	dates [3]NumericDate // exp, nbf, iat
}

// parseHeader decodes the protected header segment seg and reads alg,
// kid, typ, crit and b64 into t, by exact name; a header that is not one
// strict JSON object (strictjson.go: no duplicate member names) has no alg
// as far as tokengate is concerned, so t stays a non-JWS. It sets t.JWS once
// alg is known.
func (t *Token) parseHeader(seg []byte) error {
	var buf [256]byte
	dst := buf[:]
	if n := base64.RawURLEncoding.DecodedLen(len(seg)); n > len(dst) {
		dst = make([]byte, n)
	}
	n, err := base64.RawURLEncoding.Decode(dst, seg)
	if err != nil {
		return fmt.Errorf("%w: header is not base64url", ErrTokenMalformed)
	}
	var alg, kid, typ []byte // raw JSON values
	crit := false
	it, err := newObjectIter(dst[:n])
	for err == nil {
		var name, v []byte
		var escaped, ok bool
		if name, escaped, v, ok, err = it.next(); !ok {
			break
		}
		if escaped {
			name = appendUnescaped(nil, name)
		}
		switch string(name) {
		case "alg":
			alg = v
		case "kid":
			kid = v
		case "typ":
			typ = v
		case "crit", "b64":
			// Unencoded payloads (RFC 7797) are never used for access
			// tokens, so b64 is refused like any critical parameter.
			crit = true
		}
	}
	if err != nil {
		return fmt.Errorf("%w: header: %w", ErrTokenMalformed, err)
	}
	if alg == nil || alg[0] != '"' {
		return fmt.Errorf("%w: header has no alg", ErrTokenMalformed)
	}
	t.JWS = true
	t.Alg = jsonString(alg)
	t.Crit = crit
	if t.Kid, err = optionalString(kid, "kid"); err != nil {
		return err
	}
	if t.Typ, err = optionalString(typ, "typ"); err != nil {
		return err
	}
	return nil
}

// optionalString reads a header parameter that, when present, must be a
// string (null included: it is present and not a string).
func optionalString(v []byte, name string) (string, error) {
	if v == nil {
		return "", nil
	}
	if v[0] != '"' {
		return "", fmt.Errorf("%w: header %s is not a string", ErrTokenMalformed, name)
	}
	return jsonString(v), nil
}

// strictBase64URL decodes unpadded base64url and rejects non-zero padding
// bits.
var strictBase64URL = base64.RawURLEncoding.Strict()

// canonicalBase64URL reports whether seg is the one canonical unpadded
// base64url spelling of its bytes: no padding, no line breaks (which the
// decoder would skip) and zero trailing bits.
func canonicalBase64URL(seg []byte) bool {
	if bytes.ContainsAny(seg, "\r\n") {
		return false
	}
	var buf [512]byte
	dst := buf[:]
	if n := strictBase64URL.DecodedLen(len(seg)); n > len(dst) {
		dst = make([]byte, n)
	}
	_, err := strictBase64URL.Decode(dst, seg)
	return err == nil
}

// Malformed returns why a JWS-shaped token cannot be judged, or nil.
func (t *Token) Malformed() error {
	if t.malformed != nil {
		return t.malformed
	}
	if !t.JWS {
		return fmt.Errorf("%w: not a JWT", ErrTokenMalformed)
	}
	return nil
}

// LooksLikeJWT reports whether the token should go to JWT verifiers: it has
// the three-segment shape, whether or not it decodes.
func (t *Token) LooksLikeJWT() bool { return t.JWS || t.malformed != nil }

// safeJSONError keeps the kind of a JSON error without echoing input bytes.
func safeJSONError(err error) string {
	var je *jsonError
	switch e := err.(type) {
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("claim %q has the wrong type", e.Field)
	case *json.SyntaxError:
		return fmt.Sprintf("invalid JSON at offset %d", e.Offset)
	default:
		if errors.As(err, &je) {
			return je.Error()
		}
		return "invalid JSON"
	}
}
