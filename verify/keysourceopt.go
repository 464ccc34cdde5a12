package verify

// KeySource is where a JWT verifier's keys come from: a remote JWKS, one
// discovered from the issuer's metadata, a local JWKS document, PEM public
// keys or a shared HMAC secret. A KeySource holds exactly one of them by
// construction; the zero KeySource holds none and NewJWT refuses it.
type KeySource struct {
	kind sourceKind
	uri  string
	data []byte
}

type sourceKind int

const (
	sourceNone sourceKind = iota
	sourceRemote
	sourceDiscover
	sourceJWKS
	sourcePEM
	sourceSecret
)

// RemoteJWKS fetches the keys from a JWKS URL (https unless loopback or
// RemoteOptions.AllowInsecureHTTP).
func RemoteJWKS(url string) KeySource { return KeySource{kind: sourceRemote, uri: url} }

// DiscoveredJWKS fetches the keys from the jwks_uri in the issuer's OpenID
// Connect or RFC 8414 metadata (the issuer must then be an https URL).
func DiscoveredJWKS() KeySource { return KeySource{kind: sourceDiscover} }

// LocalJWKS uses the keys of a JWKS document.
func LocalJWKS(doc []byte) KeySource { return KeySource{kind: sourceJWKS, data: doc} }

// PublicKeys uses one or more PEM public keys or certificates.
func PublicKeys(pem []byte) KeySource { return KeySource{kind: sourcePEM, data: pem} }

// SharedSecret uses an HMAC secret's bytes.
func SharedSecret(secret []byte) KeySource { return KeySource{kind: sourceSecret, data: secret} }

// Key is the OptionError key of problems with this source: "jwks_uri",
// "issuer" (discovery), "jwks_file", "public_key" or "hmac_secret".
func (s KeySource) Key() string {
	switch s.kind {
	case sourceDiscover:
		return "issuer"
	case sourceJWKS:
		return "jwks_file"
	case sourcePEM:
		return "public_key"
	case sourceSecret:
		return "hmac_secret"
	}
	return "jwks_uri"
}
