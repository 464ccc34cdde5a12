package authz

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// testGuard protects what a route with claim_headers {x-user-email: email}
// that does not forward credentials protects.
func testGuard() *HeaderGuard {
	return NewHeaderGuard(HeaderSub, HeaderIss, HeaderScopes, HeaderClientID, HeaderVerifier,
		"x-user-email", "authorization", "proxy-authorization")
}

// TestHeaderGuardProtected: issue 10, finding 2, every spelling.
func TestHeaderGuardProtected(t *testing.T) {
	t.Parallel()
	g := testGuard()
	tests := []struct {
		name string
		want bool
	}{
		{"x-auth-sub", true},
		{"x_auth_sub", true}, // the issue
		{"X_Auth_Scopes", true},
		{"X-AUTH-SUB", true},
		{"x-auth_sub", true},
		{"x_auth-client_id", true},
		{"x-auth-role", true}, // the whole prefix
		{"X_AUTH_ANYTHING", true},
		{"x-auth-", true},
		{"x-user-email", true},
		{"X_User_Email", true}, // claim header, underscore form
		{"authorization", true},
		{"Authorization", true},
		{"proxy-authorization", true},
		{"Proxy_Authorization", true},
		{"x-auth", false},
		{"x-authx-sub", false},
		{"xx-auth-sub", false},
		{"x-user-emails", false},
		{"x-user-emai", false},
		{"content-type", false},
		{"authorizations", false},
		{"", false},
		{strings.Repeat("x", 300), false},
	}
	for _, tc := range tests {
		require.Equalf(t, tc.want, g.Protected(tc.name), "Protected(%q)", tc.name)
	}
	forwarding := NewHeaderGuard(HeaderSub, "x-user-email")
	require.False(t, forwarding.Protected("authorization"), "a route that forwards credentials")
	require.True(t, forwarding.Protected("x_auth_sub"))
}

func setOf(names ...string) []Header {
	var out []Header
	for _, n := range names {
		out = append(out, Header{n, "v"})
	}
	return out
}

// TestAppendRemovals: each distinct spelling once, lower-cased, none that
// tokengate sets, none already listed; map keys and header_map both read.
func TestAppendRemovals(t *testing.T) {
	t.Parallel()
	g := testGuard()
	req := &Headers{
		Map: map[string]string{
			"x_auth_sub":    "evil",
			"X_Auth_Scopes": "admin",
			"x-auth-sub":    "evil", // set by tokengate: overwritten, not removed
			"x_user_email":  "boss@example.com",
			"x-auth-role":   "admin",
			"content-type":  "text/plain",
			"authorization": "Bearer t",
		},
		List: []Field{
			{"X_AUTH_SUB", "evil"}, // same lower-case spelling as x_auth_sub
			{"Proxy_Authorization", "Basic x"},
			{"x-auth-role", "again"}, // duplicate of a map key
			{"accept", "*/*"},
		},
	}
	got := g.AppendRemovals([]string{"authorization"}, req, setOf(HeaderSub, HeaderScopes))
	require.Equal(t, "authorization", got[0], "dst is kept")
	slices.Sort(got)
	require.Equal(t, []string{"authorization", "proxy_authorization", "x-auth-role", "x_auth_scopes", "x_auth_sub", "x_user_email"}, got)

	require.Empty(t, g.AppendRemovals(nil, nil, nil), "no request")
}

// TestAppendRemovalsManyHeaders: issue 10, finding 7. 48k identity-looking
// headers (map keys, and header_map entries in two spellings each) give
// each spelling once. (This asserts the result; BenchmarkAppendRemovals
// measures the time, which is linear.)
func TestAppendRemovalsManyHeaders(t *testing.T) {
	t.Parallel()
	const n = 48 << 10
	req := manyHeaders(n)
	got := testGuard().AppendRemovals(nil, req, setOf(HeaderSub))
	require.Len(t, got, n+n/2)
	seen := make(map[string]bool, len(got))
	for _, name := range got {
		require.False(t, seen[name], "listed twice: %s", name)
		seen[name] = true
		require.Equal(t, strings.ToLower(name), name)
	}
	require.True(t, seen["x-auth-0"])
	require.True(t, seen[fmt.Sprintf("x_auth_%d", n/2-1)])
	require.False(t, seen[HeaderSub])
}

// manyHeaders builds n map keys x-auth-<i> and header_map entries
// X_AUTH_<i> and x_auth_<i> for i < n/2, plus x-auth-sub.
func manyHeaders(n int) *Headers {
	req := &Headers{Map: make(map[string]string, n)}
	for i := range n {
		req.Map[fmt.Sprintf("x-auth-%d", i)] = "v"
	}
	req.Map[HeaderSub] = "evil"
	for i := range n / 2 {
		req.List = append(req.List, Field{Name: fmt.Sprintf("X_AUTH_%d", i)}, Field{Name: fmt.Sprintf("x_auth_%d", i)})
	}
	return req
}

// BenchmarkAppendRemovals: time per call for 1k, 16k and 48k headers grows
// linearly (issue 10 measured 0.55 s at 16k and 4.9 s at 48k before).
func BenchmarkAppendRemovals(b *testing.B) {
	g := testGuard()
	set := setOf(HeaderSub)
	for _, n := range []int{1 << 10, 16 << 10, 48 << 10} {
		req := manyHeaders(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g.AppendRemovals(nil, req, set)
			}
		})
	}
}

// TestHeaderGuardAllocations: Protected allocates nothing.
func TestHeaderGuardAllocations(t *testing.T) {
	g := testGuard()
	for _, name := range []string{"x_auth_sub", "X_User_Email", "content-type", "authorization"} {
		require.Zerof(t, testing.AllocsPerRun(100, func() { g.Protected(name) }), "Protected(%q)", name)
	}
}
