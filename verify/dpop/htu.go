package dpop

import (
	"errors"
	"strconv"
	"strings"
)

// maxURILen caps the length of an htu claim or request URL.
const maxURILen = 8 << 10

// errURI is the cause NormalizeHTU returns; Check reports ErrProofURI.
var errURI = errors.New("htu: not an absolute http(s) URI")

// RequestURL joins the parts of a request target as the client used them:
// scheme from :scheme or a trusted x-forwarded-proto, authority from
// :authority (or Host), path from :path, which may carry a query. Check
// normalizes the result and drops the query.
func RequestURL(scheme, authority, path string) string {
	return scheme + "://" + authority + path
}

// NormalizeHTU returns the comparable form of an http or https URI, per
// RFC 9449 section 4.3 and RFC 3986 sections 6.2.2 and 6.2.3: scheme and
// host in lower case, the default port (80, 443) and an empty port removed,
// an empty path made "/", percent-encodings of unreserved characters
// decoded and the others in upper case, other bytes outside the path
// grammar percent-encoded, and dot segments removed.
//
// A URI with a query or fragment is refused unless dropQuery is true, in
// which case both are cut off (the request side: htu never holds them, RFC
// 9449 section 4.2). Userinfo, an empty host and a non-numeric port are
// refused.
func NormalizeHTU(raw string, dropQuery bool) (string, error) {
	if len(raw) == 0 || len(raw) > maxURILen {
		return "", errURI
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "", errURI
	}
	scheme = strings.ToLower(scheme)
	var defaultPort string
	switch scheme {
	case "http":
		defaultPort = "80"
	case "https":
		defaultPort = "443"
	default:
		return "", errURI
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		if !dropQuery {
			return "", errURI
		}
		rest = rest[:i]
	}
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	host, err := normalizeAuthority(authority, defaultPort)
	if err != nil {
		return "", err
	}
	p, err := normalizePath(path)
	if err != nil {
		return "", err
	}
	out := scheme + "://" + host + p
	if len(out) > maxURILen { // percent-encoding can triple the length
		return "", errURI
	}
	return out, nil
}

// normalizeAuthority lower-cases the host and drops a default or empty port.
func normalizeAuthority(a, defaultPort string) (string, error) {
	if strings.ContainsAny(a, "@%") {
		return "", errURI // userinfo, or a percent-encoded host
	}
	host, port := a, ""
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", errURI
		}
		host, port = a[:end+1], a[end+1:]
		if !validChars(host[1:end], isIPv6Char) || end == 1 {
			return "", errURI
		}
		if port != "" && port[0] != ':' {
			return "", errURI
		}
		port = strings.TrimPrefix(port, ":")
	} else {
		if i := strings.LastIndexByte(a, ':'); i >= 0 {
			host, port = a[:i], a[i+1:]
		}
		if host == "" || !validChars(host, isRegNameChar) {
			return "", errURI
		}
	}
	host = strings.ToLower(host)
	if port == "" {
		return host, nil
	}
	if !validChars(port, isDigit) || len(port) > 5 {
		return "", errURI
	}
	n, err := strconv.Atoi(port)
	if err != nil || n > 65535 {
		return "", errURI
	}
	port = strconv.Itoa(n) // "0443" and "443" are the same port
	if port == defaultPort {
		return host, nil
	}
	return host + ":" + port, nil
}

// normalizePath normalizes percent-encoding and removes dot segments.
func normalizePath(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", errURI
			}
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			if isUnreserved(v) {
				b.WriteByte(v)
			} else {
				writeEscaped(&b, v)
			}
			i += 2
		case c == '/' || isPChar(c):
			b.WriteByte(c)
		default:
			writeEscaped(&b, c)
		}
	}
	return removeDotSegments(b.String()), nil
}

// removeDotSegments is RFC 3986 section 5.2.4 for an absolute path.
func removeDotSegments(p string) string {
	if !strings.Contains(p, "/.") {
		return p
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

func writeEscaped(b *strings.Builder, c byte) {
	const hexUpper = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(hexUpper[c>>4])
	b.WriteByte(hexUpper[c&15])
}

func validChars(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case isDigit(c):
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// isUnreserved is RFC 3986 unreserved.
func isUnreserved(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

// isSubDelim is RFC 3986 sub-delims.
func isSubDelim(c byte) bool { return strings.IndexByte("!$&'()*+,;=", c) >= 0 }

// isPChar is RFC 3986 pchar without pct-encoded.
func isPChar(c byte) bool { return isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@' }

// isRegNameChar is RFC 3986 reg-name (and IPv4) without pct-encoded.
func isRegNameChar(c byte) bool { return isUnreserved(c) || isSubDelim(c) }

// isIPv6Char covers IPv6 literals (with an optional zone is not allowed).
func isIPv6Char(c byte) bool { return isHex(c) || c == ':' || c == '.' }
