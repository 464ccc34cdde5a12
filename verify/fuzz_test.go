package verify_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/verify"
)

// fuzzSecret is the fixed HMAC secret of the fuzzed HS256 verifier.
var fuzzSecret = []byte("fuzz-secret-0123456789abcdef0123456789abcdef")

// fuzzSeeds returns valid tokens for the fuzzed verifiers (one HS256
// secret, one ES256 JWKS), and garbage and attack tokens built from them.
func fuzzSeeds(tb testing.TB) (verifiers []*verify.JWT, valid, others []string) {
	tb.Helper()
	hs := &testKey{alg: "HS256", priv: fuzzSecret, pub: fuzzSecret}
	es := newTestKey(tb, "ES256", "fuzz")
	attacker := newTestKey(tb, "ES256", "fuzz-attacker")
	verifiers = []*verify.JWT{
		newVerifier(tb, verify.JWTOptions{Name: "hs", Keys: verify.SharedSecret(fuzzSecret)}),
		newVerifier(tb, verify.JWTOptions{Name: "es", Keys: verify.LocalJWKS(jwksOf(tb, es))}),
	}
	route := claims(map[string]any{"aud": testAudience})
	valid = []string{
		hs.mint(tb, map[string]any{"kid": nil}, route),
		es.mint(tb, nil, route),
		es.mint(tb, map[string]any{"typ": "at+jwt"}, claims(map[string]any{"aud": []string{"x", testAudience}, "scp": []string{"a"}})),
	}
	v := valid[1]
	parts := strings.Split(v, ".")
	others = []string{
		"", ".", "..", "...", "a.b.c", "Bearer " + v, v + " ", " " + v, v + ".", v + "\n",
		strings.Repeat("A", 100) + "." + strings.Repeat("B", 100) + "." + strings.Repeat("C", 100),
		b64([]byte(`{"alg":"ES256"}`)) + "." + b64([]byte(`{}`)) + ".",
		b64([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".",
		b64([]byte(`{"alg":"HS256","kid":"fuzz"}`)) + "." + parts[1] + "." + parts[2],
		signCompact(tb, "HS256", es.publicPEM(tb), map[string]any{"alg": "HS256", "kid": "fuzz"}, route),
		signCompact(tb, "HS256", es.publicDER(tb), map[string]any{"alg": "HS256"}, route),
		(&testKey{alg: "ES256", kid: "fuzz", priv: attacker.priv}).mint(tb, nil, route),
		attacker.mint(tb, map[string]any{"kid": nil, "jwk": map[string]any{"kty": "EC"}}, route),
		es.mint(tb, map[string]any{"kid": "../../etc/passwd"}, route),
		es.mint(tb, map[string]any{"crit": []string{"exp"}}, route),
		es.mint(tb, map[string]any{"typ": "JOSE"}, route),
		parts[0] + "." + b64([]byte(`{"iss":"`+testIssuer+`","aud":"`+testAudience+`","exp":9999999999}`)) + "." + parts[2],
		v[:len(v)-1], v[:len(v)-2], parts[0] + "." + parts[1],
		// Other spellings of valid signatures.
		flipBits(valid[0]), flipBits(v), valid[0] + "=", v + "==", v[:len(v)-10] + "\n" + v[len(v)-10:],
		(&testKey{alg: "ES384", kid: "fuzz", priv: newTestKey(tb, "ES384", "fuzz").priv}).mint(tb, nil, route),
	}
	return verifiers, valid, others
}

// FuzzParseToken: ParseToken never panics, keeps the raw token, and its
// verdicts are consistent.
func FuzzParseToken(f *testing.F) {
	_, valid, others := fuzzSeeds(f)
	for _, s := range slices.Concat(valid, others) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tok := verify.ParseToken(raw)
		if tok.Raw != raw {
			t.Fatal("Raw differs from the input")
		}
		err := tok.Malformed()
		if err != nil && !errors.Is(err, verify.ErrTokenMalformed) {
			t.Fatalf("Malformed() = %v, not token_malformed", err)
		}
		if err == nil && (!tok.JWS || tok.Claims == nil) {
			t.Fatal("a well-formed token must be a JWS with claims")
		}
		if tok.JWS && !tok.LooksLikeJWT() {
			t.Fatal("a JWS must look like a JWT")
		}
		if tok.LooksLikeJWT() && strings.Count(raw, ".") != 2 {
			t.Fatal("only three-segment tokens look like JWTs")
		}
	})
}

// FuzzVerify: arbitrary strings never panic the verifiers, every refusal
// carries a code, static keys are never "unavailable", and nothing verifies
// except the seed valid tokens themselves.
func FuzzVerify(f *testing.F) {
	verifiers, valid, others := fuzzSeeds(f)
	for _, s := range slices.Concat(valid, others) {
		f.Add(s)
	}
	ctx := context.Background()
	aud := []string{testAudience}
	f.Fuzz(func(t *testing.T, raw string) {
		tok := verify.ParseToken(raw)
		for _, v := range verifiers {
			id, err := v.Verify(ctx, tok, aud)
			if err == nil {
				if !slices.Contains(valid, raw) {
					t.Fatalf("verifier %s accepted a token that is not a seed valid token: %q", v.Name(), raw)
				}
				if id == nil || id.Subject != "alice" {
					t.Fatal("accepted without the identity")
				}
				continue
			}
			if id != nil {
				t.Fatal("an identity with an error")
			}
			var e *verify.Error
			if !errors.As(err, &e) {
				t.Fatalf("error without a code: %v", err)
			}
			if verify.IsUnavailable(err) {
				t.Fatalf("static keys reported unavailable: %v", err)
			}
		}
	})
}
