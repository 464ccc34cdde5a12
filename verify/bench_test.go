package verify_test

import (
	"context"
	"testing"

	"github.com/tokengate/tokengate/jose"
	"github.com/tokengate/tokengate/verify"
)

// benchmarkVerify measures the request hot path for one algorithm: parse a
// fixed valid token, then verify it against keys already loaded.
func benchmarkVerify(b *testing.B, alg string) {
	k := newTestKey(b, alg, "bench")
	o := verify.JWTOptions{}
	if secret, ok := k.pub.([]byte); ok {
		o.Keys = verify.SharedSecret(secret)
		o.Algorithms = []jose.Alg{jose.Alg(alg)}
	} else {
		o.Keys = verify.LocalJWKS(jwksOf(b, k))
	}
	v := newVerifier(b, o)
	raw := k.mint(b, nil, claims(nil))
	ctx := context.Background()
	aud := []string{testAudience}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, verify.ParseToken(raw), aud); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRS256 measures ParseToken + Verify for RS256 (2048-bit).
func BenchmarkVerifyRS256(b *testing.B) { benchmarkVerify(b, "RS256") }

// BenchmarkVerifyPS256 measures ParseToken + Verify for PS256 (2048-bit).
func BenchmarkVerifyPS256(b *testing.B) { benchmarkVerify(b, "PS256") }

// BenchmarkVerifyES256 measures ParseToken + Verify for ES256 (P-256).
func BenchmarkVerifyES256(b *testing.B) { benchmarkVerify(b, "ES256") }

// BenchmarkVerifyEdDSA measures ParseToken + Verify for EdDSA (Ed25519).
func BenchmarkVerifyEdDSA(b *testing.B) { benchmarkVerify(b, "EdDSA") }

// BenchmarkVerifyHS256 measures ParseToken + Verify for HS256.
func BenchmarkVerifyHS256(b *testing.B) { benchmarkVerify(b, "HS256") }
