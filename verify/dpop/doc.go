// Package dpop checks sender-constrained access tokens: DPoP proofs
// (RFC 9449) and certificate-bound tokens (RFC 8705 section 3).
//
// The order a caller applies it in, after the token itself verified:
//
//	cnf, err := dpop.ConfirmationFromPayload(identity.Payload) // JWT claims or introspection answer
//	err = dpop.CheckScheme(schemeIsDPoP, cnf, route.RequireDPoP)
//	if schemeIsDPoP {
//		err = checker.Check(ctx, dpopHeaderValues, dpop.Request{
//			Method: method, URL: dpop.RequestURL(scheme, authority, path), AccessToken: token,
//		}, cnf.JKT)
//	}
//	tp, _ := dpop.ThumbprintFromEnvoy(sourceCertificate) // or ThumbprintFromXFCC where trusted
//	err = dpop.CheckCertificate(cnf, tp, route.RequireMTLSBinding)
//
// A Checker holds the fixed setup (allowed algorithms, proof window, nonces,
// replay store, clock); Check takes one request's proofs, method, URL and
// access token plus the token's cnf.jkt and returns nil or one *Error with a
// stable code. The package knows nothing of routes, Envoy or HTTP framing.
// Every error is an *Error whose Code is one of the Code constants; the
// verify package turns them into verify.Error values with FromDPoP.
//
// Only parsing is done here: the jwk header is parsed and every signature
// verified by jwx, and the nonces are an HMAC from crypto/hmac.
package dpop
