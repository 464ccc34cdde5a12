package dpop

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"net/url"
	"strings"
)

// maxXFCCLen caps the x-forwarded-client-cert value read.
const maxXFCCLen = 64 << 10

// CertificateThumbprint returns the RFC 8705 x5t#S256 of a DER
// certificate: base64url(SHA-256(DER)) without padding.
func CertificateThumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ThumbprintFromPEM returns the x5t#S256 of the first CERTIFICATE block of
// a PEM chain (the leaf comes first). The block must parse as an X.509
// certificate. Errors match ErrCertificateMissing.
func ThumbprintFromPEM(data []byte) (string, error) {
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return "", ErrCertificateMalformed
		}
		return CertificateThumbprint(block.Bytes), nil
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return "", ErrCertificateMissing
	}
	return "", ErrCertificateMalformed
}

// ThumbprintFromEnvoy returns the x5t#S256 of the peer certificate as
// Envoy puts it in the CheckRequest's source.certificate: URL-encoded PEM
// (ext_authz include_peer_certificate: true). "" means the connection had
// no client certificate: ErrCertificateMissing.
func ThumbprintFromEnvoy(sourceCertificate string) (string, error) {
	if sourceCertificate == "" {
		return "", ErrCertificateMissing
	}
	p, err := url.QueryUnescape(sourceCertificate)
	if err != nil {
		return "", ErrCertificateMalformed
	}
	return ThumbprintFromPEM([]byte(p))
}

// ThumbprintFromXFCC returns the x5t#S256 of the client certificate named
// in an x-forwarded-client-cert header (Envoy format: elements separated by
// ",", each "Key=Value;Key=Value", values optionally double-quoted).
//
// Rule: only the LAST element counts. Envoy with forward_client_cert_details
// APPEND_FORWARD (and Istio's sidecars) appends the element describing its
// own downstream peer at the end, so the last element is the one written
// by the trusted proxy in front of tokengate; earlier elements come from
// further away and are not trusted. Use this only where that proxy is
// configured to sanitize or append the header (the route's
// trust_forwarded_client_cert).
//
// From that element, Cert (URL-encoded PEM) is used when present, and a
// Hash beside it must agree; otherwise Hash (hex SHA-256 of the DER, which
// is what Istio sends by default) is converted to base64url. No element,
// or an element with neither, is ErrCertificateMissing; a malformed value
// is ErrCertificateMalformed.
func ThumbprintFromXFCC(header string) (string, error) {
	if strings.TrimSpace(header) == "" {
		return "", ErrCertificateMissing
	}
	if len(header) > maxXFCCLen {
		return "", ErrCertificateMalformed
	}
	elems, err := splitQuoted(header, ',')
	if err != nil {
		return "", ErrCertificateMalformed
	}
	last := elems[len(elems)-1]
	pairs, err := splitQuoted(last, ';')
	if err != nil {
		return "", ErrCertificateMalformed
	}
	var cert, hash string
	for _, p := range pairs {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			return "", ErrCertificateMalformed
		}
		if v, err = unquote(v); err != nil {
			return "", ErrCertificateMalformed
		}
		switch strings.ToLower(k) {
		case "cert":
			cert = v
		case "hash":
			hash = v
		}
	}
	var fromHash string
	if hash != "" {
		sum, err := hex.DecodeString(hash)
		if err != nil || len(sum) != sha256.Size {
			return "", ErrCertificateMalformed
		}
		fromHash = base64.RawURLEncoding.EncodeToString(sum)
	}
	if cert == "" {
		if fromHash == "" {
			return "", ErrCertificateMissing
		}
		return fromHash, nil
	}
	tp, err := ThumbprintFromEnvoy(cert)
	if err != nil {
		return "", err
	}
	if fromHash != "" && fromHash != tp {
		return "", ErrCertificateMalformed
	}
	return tp, nil
}

// CheckCertificateBinding compares a token's cnf.x5t#S256 with the
// thumbprint of the connection's client certificate. "" thumbprint means
// no certificate: ErrCertificateMissing; a different one is
// ErrCertificateMismatch.
func CheckCertificateBinding(wantX5T, thumbprint string) error {
	switch {
	case thumbprint == "":
		return ErrCertificateMissing
	case wantX5T == "" || !equal(wantX5T, thumbprint):
		return ErrCertificateMismatch
	}
	return nil
}

// splitQuoted splits s at sep outside double quotes; a backslash escapes
// the next byte inside quotes. An unterminated quote is an error.
func splitQuoted(s string, sep byte) ([]string, error) {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if quoted {
		return nil, ErrCertificateMalformed
	}
	return append(out, s[start:]), nil
}

// unquote removes surrounding double quotes and backslash escapes.
func unquote(v string) (string, error) {
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, `"`) {
		return v, nil
	}
	if len(v) < 2 || !strings.HasSuffix(v, `"`) {
		return "", ErrCertificateMalformed
	}
	v = v[1 : len(v)-1]
	if !strings.Contains(v, `\`) {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String(), nil
}
