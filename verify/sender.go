package verify

import (
	"bytes"
	"context"

	"github.com/tokengate/tokengate/verify/dpop"
)

// ConfirmationClaim is the claim that binds a token to a key or a
// certificate (RFC 7800): the token cache always keeps it.
const ConfirmationClaim = "cnf"

// Sender is what one request shows of its sender: how it presented the
// token, its DPoP proofs, and its client certificate. A bound token (cnf)
// is accepted only with the proof or the certificate it is bound to; a
// route may also require a binding.
type Sender struct {
	// DPoP reports that the Authorization scheme was DPoP (else Bearer).
	DPoP bool
	// Proofs are the DPoP header values as received.
	Proofs []string
	// Method and URL are the request's, for the proof's htm and htu.
	Method, URL string
	// PeerCertificate is the client certificate of the connection as
	// Envoy sends it (URL-encoded PEM), and ForwardedClientCert the
	// x-forwarded-client-cert header when the route trusts it.
	PeerCertificate, ForwardedClientCert string
	// RequireDPoP and RequireMTLS refuse tokens without that binding.
	RequireDPoP, RequireMTLS bool
	// Checker checks proofs; nil refuses every DPoP presentation.
	Checker *dpop.Checker
}

// check applies the sender rules to an accepted token (contract section
// 11): the presentation scheme against cnf.jkt, the proof, and the client
// certificate against cnf.x5t#S256. The cache only ever remembers the
// token's verification, never a proof's.
func (s *Sender) check(ctx context.Context, res Result, raw string) error {
	cnf, err := res.confirmation()
	if err != nil {
		return FromDPoP(err)
	}
	if cnf == (dpop.Confirmation{}) && !s.DPoP && !s.RequireDPoP && !s.RequireMTLS {
		return nil // the common case: an unbound bearer token
	}
	if err := dpop.CheckScheme(s.DPoP, cnf, s.RequireDPoP); err != nil {
		return FromDPoP(err)
	}
	if s.DPoP {
		if s.Checker == nil {
			return FromDPoP(dpop.ErrProofMissing)
		}
		req := dpop.Request{Method: s.Method, URL: s.URL, AccessToken: raw}
		if err := s.Checker.Check(ctx, s.Proofs, req, cnf.JKT); err != nil {
			return FromDPoP(err)
		}
	}
	if cnf.X5TS256 == "" && !s.RequireMTLS {
		return nil
	}
	thumbprint, err := s.thumbprint()
	if err != nil && cnf.X5TS256 != "" {
		return FromDPoP(err)
	}
	return FromDPoP(dpop.CheckCertificate(cnf, thumbprint, s.RequireMTLS))
}

// thumbprint is the x5t#S256 of the client certificate, "" when there is
// none.
func (s *Sender) thumbprint() (string, error) {
	if s.ForwardedClientCert != "" {
		return dpop.ThumbprintFromXFCC(s.ForwardedClientCert)
	}
	if s.PeerCertificate != "" {
		return dpop.ThumbprintFromEnvoy(s.PeerCertificate)
	}
	return "", nil
}

// confirmation returns the token's cnf: from the verified payload, or from
// the cache entry.
func (r Result) confirmation() (dpop.Confirmation, error) {
	switch {
	case r.entry != nil:
		v := r.Claim(ConfirmationClaim)
		if v == "" {
			return dpop.Confirmation{}, nil
		}
		return dpop.ConfirmationFromPayload([]byte(`{"cnf":` + v + `}`))
	case r.id != nil && bytes.Contains(r.id.Payload, []byte(`"cnf"`)):
		return dpop.ConfirmationFromPayload(r.id.Payload)
	}
	return dpop.Confirmation{}, nil
}
