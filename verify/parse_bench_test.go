package verify_test

import (
	"testing"
	"time"

	"github.com/tokengate/tokengate/verify"
)

// benchmarkParse measures ParseToken alone (split, header, claims) on a
// token with the given claims.
func benchmarkParse(b *testing.B, cl map[string]any) {
	k := newTestKey(b, "ES256", "bench")
	raw := k.mint(b, map[string]any{"typ": "at+jwt"}, cl)
	if err := verify.ParseToken(raw).Malformed(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if verify.ParseToken(raw).Claims == nil {
			b.Fatal("no claims")
		}
	}
}

// BenchmarkParseTokenMinimal: the test world's usual claims (iss, sub,
// aud, exp, iat, scope).
func BenchmarkParseTokenMinimal(b *testing.B) { benchmarkParse(b, claims(nil)) }

// BenchmarkParseTokenTypical: claims the size of a Keycloak or Entra ID
// access token, with members tokengate does not read, a nested object and
// arrays.
func BenchmarkParseTokenTypical(b *testing.B) {
	benchmarkParse(b, claims(map[string]any{
		"aud":                []string{"api://other", testAudience},
		"nbf":                testNow.Add(-time.Minute).Unix(),
		"jti":                "5c1f3a1e-8a3c-4d8b-9e0f-2f7b1c9d0e11",
		"azp":                "mcp-client",
		"client_id":          "mcp-client",
		"scp":                []string{"mcp:read", "mcp:write", "profile"},
		"sid":                "8f7e6d5c-4b3a-2918-0716-253443526170",
		"email":              "alice@example.com",
		"email_verified":     true,
		"name":               "Alice Example",
		"preferred_username": "alice",
		"realm_access":       map[string]any{"roles": []string{"offline_access", "uma_authorization", "default-roles-mcp"}},
		"resource_access":    map[string]any{"account": map[string]any{"roles": []string{"manage-account", "view-profile"}}},
		"acr":                "1",
		"tid":                "72f988bf-86f1-41af-91ab-2d7cd011db47",
	}))
}
