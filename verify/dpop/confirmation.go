package dpop

import (
	"bytes"
	"encoding/json"
)

// Confirmation is the cnf member of a JWT's claims or of an introspection
// answer (RFC 7800; jkt from RFC 9449, x5t#S256 from RFC 8705).
type Confirmation struct {
	// JKT is the RFC 7638 thumbprint of the DPoP key the token is bound to.
	JKT string `json:"jkt"`
	// X5TS256 is base64url(SHA-256(DER)) of the client certificate the
	// token is bound to.
	X5TS256 string `json:"x5t#S256"`
}

// ConfirmationFromPayload reads cnf from a verified JSON object: the
// claims of a JWT or the body of an introspection answer. No cnf (or
// "cnf": null) is the zero Confirmation; a cnf that is not an object, or
// whose jkt or x5t#S256 is not a string, is ErrConfirmationMalformed.
func ConfirmationFromPayload(payload []byte) (Confirmation, error) {
	var doc struct {
		Cnf json.RawMessage `json:"cnf"`
	}
	if err := json.Unmarshal(payload, &doc); err != nil {
		return Confirmation{}, ErrConfirmationMalformed
	}
	raw := bytes.TrimSpace(doc.Cnf)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return Confirmation{}, nil
	}
	if raw[0] != '{' {
		return Confirmation{}, ErrConfirmationMalformed
	}
	var c Confirmation
	if err := json.Unmarshal(raw, &c); err != nil {
		return Confirmation{}, ErrConfirmationMalformed
	}
	return c, nil
}

// CheckScheme applies the presentation rules of contract section 11
// before any proof is looked at: usedDPoP says the Authorization scheme
// was DPoP (otherwise Bearer). A DPoP token must carry cnf.jkt
// (ErrTokenNotBound); a token with cnf.jkt must not come as Bearer
// (ErrBoundTokenAsBearer, a downgrade); a requireDPoP route refuses Bearer
// (ErrDPoPRequired). After nil with usedDPoP, call Checker.Check with
// cnf.JKT.
func CheckScheme(usedDPoP bool, cnf Confirmation, requireDPoP bool) error {
	switch {
	case usedDPoP && cnf.JKT == "":
		return ErrTokenNotBound
	case usedDPoP:
		return nil
	case cnf.JKT != "":
		return ErrBoundTokenAsBearer
	case requireDPoP:
		return ErrDPoPRequired
	}
	return nil
}

// CheckCertificate applies RFC 8705 section 3 and require_mtls_binding: a
// token with cnf.x5t#S256 needs the connection's client certificate to
// have that thumbprint (see CheckCertificateBinding); a token without it
// passes unless requireBinding (ErrCertificateBindingRequired).
// thumbprint is "" when the connection had no client certificate; compute
// it only when cnf.X5TS256 != "" (ThumbprintFromEnvoy, or
// ThumbprintFromXFCC where the route trusts the header).
func CheckCertificate(cnf Confirmation, thumbprint string, requireBinding bool) error {
	if cnf.X5TS256 == "" {
		if requireBinding {
			return ErrCertificateBindingRequired
		}
		return nil
	}
	return CheckCertificateBinding(cnf.X5TS256, thumbprint)
}
