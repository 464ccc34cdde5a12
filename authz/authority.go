package authz

import (
	"net/netip"
	"strings"
)

// maxHostLen is the longest DNS name (RFC 1035 section 2.3.4), without its
// trailing dot.
const maxHostLen = 253

// ParseAuthority parses the :authority (Host) of a request strictly and
// returns the host that routes match on: lower-cased, without the port and
// without a trailing dot; an IPv6 literal without its brackets, in its
// canonical RFC 5952 form. ok is false for anything else, and such a
// request must be refused before routing: an upstream could read another
// host out of it than the route matcher did (issue 10, finding 1).
//
// Accepted: host [ ":" port ], where
//
//   - host is a name of labels of ASCII letters, digits, "-" and "_",
//     separated by single dots, each label at most 63 bytes, the whole at
//     most 253 (an optional trailing dot is dropped); IPv4 addresses are
//     such names. Other RFC 3986 reg-name characters (sub-delims like ","
//     or ";", "~", percent-escapes) are refused: no DNS name needs them,
//     and an upstream may cut the host at them;
//   - or "[" IPv6address "]" (no zone, no IPvFuture);
//   - port is 1 to 5 digits, at most 65535.
//
// Refused, for example: "", "host:", "host:443:1", "host:80:x",
// "user@host", "a,b", "a b", "a%2eb", "[v1.x]", "[fe80::1%25eth0]",
// "a..b", ".a". It does not allocate unless the host has upper-case
// letters or is an IPv6 literal.
func ParseAuthority(authority string) (host string, ok bool) {
	h, port := authority, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", false
		}
		h, port = h[1:end], h[end+1:]
		if port != "" {
			if port[0] != ':' || !validPort(port[1:]) {
				return "", false
			}
		}
		return ipv6Literal(h)
	}
	if i := strings.IndexByte(h, ':'); i >= 0 {
		h, port = h[:i], h[i+1:]
		if !validPort(port) {
			return "", false
		}
	}
	return hostName(h)
}

// ParseForwardedHost parses the value of an X-Forwarded-Host header (the
// one the gateway sent) like ParseAuthority. A list of hosts ("a, b", as
// proxies that append build it) is refused: which one the upstream reads
// cannot be known.
func ParseForwardedHost(value string) (host string, ok bool) {
	return ParseAuthority(value)
}

// validPort reports whether p is 1 to 5 digits with a value of at most
// 65535.
func validPort(p string) bool {
	if len(p) == 0 || len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// hostName checks a DNS-style name and returns it lower-cased without a
// trailing dot.
func hostName(h string) (string, bool) {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > maxHostLen {
		return "", false
	}
	upper := false
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '.':
			if label == 0 {
				return "", false // empty label: leading dot or ".."
			}
			label = 0
			continue
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		case 'A' <= c && c <= 'Z':
			upper = true
		default:
			return "", false
		}
		if label++; label > 63 {
			return "", false
		}
	}
	if label == 0 {
		return "", false // "a.." : an empty last label
	}
	if upper {
		h = strings.ToLower(h)
	}
	return h, true
}

// ipv6Literal checks the text between the brackets of an IP-literal: an
// IPv6 address without a zone.
func ipv6Literal(h string) (string, bool) {
	if h == "" || strings.IndexByte(h, '%') >= 0 {
		return "", false
	}
	a, err := netip.ParseAddr(h)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return "", false
	}
	return a.String(), true
}
