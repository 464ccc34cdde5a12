package authz

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParseAuthority: issue 10, finding 1. Every example of the issue is
// refused, and the variants found while fixing it.
func TestParseAuthority(t *testing.T) {
	t.Parallel()
	long63 := strings.Repeat("a", 63)
	tests := []struct {
		in   string
		want string // "" means refused
	}{
		{"secure.example", "secure.example"},
		{"secure.example:443", "secure.example"},
		{"Secure.EXAMPLE:8443", "secure.example"},
		{"secure.example.", "secure.example"},
		{"secure.example.:443", "secure.example"},
		{"localhost", "localhost"},
		{"my_service:8080", "my_service"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"127.0.0.1:9000", "127.0.0.1"},
		{"[::1]", "::1"},
		{"[::1]:8080", "::1"},
		{"[2001:DB8::1]:443", "2001:db8::1"},
		{"[2001:db8:0:0:0:0:0:1]", "2001:db8::1"},
		{"[::ffff:10.0.0.1]", "::ffff:10.0.0.1"},
		{"host:0", "host"},
		{"host:65535", "host"},
		{long63 + ".example", long63 + ".example"},
		// The examples.
		{"secure.example:443:1", ""},
		{"secure.example:80:x", ""},
		{"user@secure.example", ""},
		{"secure.example,other", ""},
		{"secure.example, secure.example", ""}, // two Host headers joined
		{"secure.example,secure.example", ""},
		// Variants.
		{"", ""},
		{":443", ""},
		{".", ""},
		{"secure.example:", ""},
		{"secure.example:65536", ""},
		{"secure.example:123456", ""},
		{"secure.example:-1", ""},
		{"secure.example:+443", ""},
		{"secure.example: 443", ""},
		{"secure.example :443", ""},
		{" secure.example", ""},
		{"secure example", ""},
		{"secure.example\t", ""},
		{"secure.example\r\n", ""},
		{"secure.example\x00", ""},
		{"secure%2eexample", ""},
		{"%73ecure.example", ""},
		{"secure.example;x", ""},
		{"secure.example/path", ""},
		{"secure.example?q", ""},
		{"secure.example#f", ""},
		{"secure.example\\x", ""},
		{"secure.example~", ""},
		{"secure..example", ""},
		{".secure.example", ""},
		{"secure.example..", ""},
		{"sécure.example", ""},
		{"secure.example" + "\u3002" + "com", ""},
		{long63 + "a.example", ""},
		{strings.Repeat("a.", 127) + "ab", ""},
		{"[::1", ""},
		{"::1", ""},
		{"[::1]x", ""},
		{"[::1]:", ""},
		{"[::1]:80:1", ""},
		{"[127.0.0.1]", ""},
		{"[fe80::1%25eth0]", ""},
		{"[fe80::1%eth0]", ""},
		{"[v1.fe]", ""},
		{"[]", ""},
		{"[secure.example]", ""},
		{"user@[::1]", ""},
	}
	for _, tc := range tests {
		got, ok := ParseAuthority(tc.in)
		require.Equalf(t, tc.want != "", ok, "ParseAuthority(%q) ok", tc.in)
		require.Equalf(t, tc.want, got, "ParseAuthority(%q)", tc.in)
	}
	for _, in := range []string{"secure.example", "a, b", "secure.example,other", ""} {
		h1, ok1 := ParseForwardedHost(in)
		h2, ok2 := ParseAuthority(in)
		require.Equal(t, []any{h2, ok2}, []any{h1, ok1}, "ParseForwardedHost(%q)", in)
	}
}

// upstreamHost is how an nginx-style upstream reads a Host: up to the
// first ":" (or the bracketed literal), case and trailing dot ignored.
func upstreamHost(authority string) string {
	h := authority
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[1:i]
			if a, err := netip.ParseAddr(h); err == nil {
				return a.String()
			}
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// FuzzAuthority: for any string, an accepted authority is a valid host that
// round-trips, routes exactly as the route matcher routed it before
// (hostOnly) and names the host an nginx-style upstream serves; so a
// host-scoped route can only be passed over for a string the parser
// refuses, which never reaches routing.
func FuzzAuthority(f *testing.F) {
	for _, s := range []string{
		"secure.example", "secure.example:443", "secure.example:443:1", "secure.example:80:x",
		"user@secure.example", "secure.example,other", "SECURE.example.", "[::1]:80", "[2001:db8::1]",
		"[fe80::1%25eth0]", "a..b", "host:", "127.0.0.1", "secure.example ,x", "xn--a.b_c-d",
	} {
		f.Add(s)
	}
	secure := &Route{pathPrefix: "/", hosts: []string{"secure.example", "*.secure.example"}}
	f.Fuzz(func(t *testing.T, s string) {
		host, ok := ParseAuthority(s)
		if !ok {
			if host != "" {
				t.Fatalf("refused %q with a host", s)
			}
			return
		}
		if host == "" || host != strings.ToLower(host) || strings.HasSuffix(host, ".") {
			t.Fatalf("ParseAuthority(%q) = %q: not a lower-case host without a trailing dot", s, host)
		}
		asAuthority := host
		if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
			if a.String() != host {
				t.Fatalf("IPv6 %q not canonical", host)
			}
			asAuthority = "[" + host + "]"
		} else {
			for i := 0; i < len(host); i++ {
				c := host[i]
				if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
					t.Fatalf("ParseAuthority(%q) = %q: byte %q in a name", s, host, c)
				}
			}
			if old := hostOnly(s); old != host {
				t.Fatalf("ParseAuthority(%q) = %q, the route matcher's hostOnly %q", s, host, old)
			}
		}
		for _, again := range []string{asAuthority, asAuthority + ":443", strings.ToUpper(asAuthority)} {
			if h, ok := ParseAuthority(again); !ok || h != host {
				t.Fatalf("%q does not round-trip through %q: %q %v", s, again, h, ok)
			}
		}
		if up := upstreamHost(s); up != host {
			t.Fatalf("accepted %q as %q, an upstream serves %q", s, host, up)
		}
		if secure.matches(upstreamHost(s), "/", "GET") != secure.matches(host, "/", "GET") {
			t.Fatalf("accepted %q: the host-scoped route and the upstream disagree", s)
		}
	})
}

// BenchmarkParseAuthority: the common path (a lower-case name with a port)
// allocates nothing.
func BenchmarkParseAuthority(b *testing.B) {
	for _, in := range []string{"mcp.example.com", "mcp.example.com:8443", "MCP.Example.com", "[2001:db8::1]:443"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := ParseAuthority(in); !ok {
					b.Fatal(in)
				}
			}
		})
	}
}

// TestParseAuthorityAllocations: allocation-free on the common path.
func TestParseAuthorityAllocations(t *testing.T) {
	for _, in := range []string{"mcp.example.com", "mcp.example.com:8443", "127.0.0.1:80"} {
		n := testing.AllocsPerRun(100, func() { _, _ = ParseAuthority(in) })
		require.Zerof(t, n, "ParseAuthority(%q) allocates", in)
	}
}

// hostOnly is how routes read the :authority before ParseAuthority: the
// port cut at the last colon, lower-cased, without a trailing dot. Kept as
// the reference the fuzz target holds ParseAuthority to.
func hostOnly(authority string) string {
	h := authority
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[1:i]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}
