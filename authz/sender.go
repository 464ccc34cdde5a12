package authz

import (
	"errors"
	"reflect"
	"strings"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/verify"
	"github.com/tokengate/tokengate/verify/dpop"
)

// Sender-constrained tokens (contract section 11): the DPoP checker of a
// policy, and what a request shows of its sender.

// dpopSetup is a policy's DPoP checker and the configuration it was built
// from, so that a reload with the same replay store keeps it (and the
// proofs it remembers).
type dpopSetup struct {
	cfg     config.DPoP
	checker *dpop.Checker
	store   dpop.ReplayStore
}

func buildDPoP(cfg *config.Config, o BuildOptions) (*dpopSetup, error) {
	if o.Previous != nil && o.Previous.dpop != nil && reflect.DeepEqual(o.Previous.dpop.cfg, cfg.DPoP) {
		return o.Previous.dpop, nil
	}
	store, err := dpop.OpenReplayStore(cfg.DPoP.ReplayStore, o.Now)
	if err != nil {
		return nil, config.Problem{Path: "dpop.replay_store", Msg: err.Error()}
	}
	var nonces *dpop.Nonces
	if cfg.DPoP.Nonce {
		if nonces, err = dpop.NewNonces(nil, max(cfg.DPoP.ProofMaxAge.D(), dpop.DefaultMaxAge), o.Now); err != nil {
			return nil, config.Problem{Path: "dpop.nonce", Msg: err.Error()}
		}
	}
	c, err := dpop.NewChecker(dpop.Config{
		Algorithms: cfg.DPoP.Algorithms, MaxAge: cfg.DPoP.ProofMaxAge.D(), ClockSkew: cfg.Server.ClockSkew.D(),
		Nonces: nonces, Store: store, Now: o.Now,
	})
	if err != nil {
		_ = store.Close()
		return nil, config.Problem{Path: "dpop.algorithms", Msg: err.Error()}
	}
	return &dpopSetup{cfg: cfg.DPoP, checker: c, store: store}, nil
}

// credential reads the Authorization header: a Bearer or a DPoP token. Any
// other scheme counts as no token; a Bearer or DPoP scheme without exactly
// one token is a malformed request.
func credential(h string) (token string, isDPoP bool, err error) {
	scheme, _, _ := strings.Cut(h, " ")
	if strings.EqualFold(scheme, "dpop") {
		token, err = bearerToken("Bearer" + h[len(scheme):])
		return token, true, err
	}
	token, err = bearerToken(h)
	return token, false, err
}

// sender returns what req shows of its sender, for the route's checks.
func (p *Policy) sender(r *Route, req *Request, isDPoP bool) *verify.Sender {
	s := &verify.Sender{
		DPoP: isDPoP, Method: req.Method,
		PeerCertificate: req.PeerCertificate,
		RequireDPoP:     r.requireDPoP, RequireMTLS: r.requireMTLS,
	}
	if p.dpop != nil {
		s.Checker = p.dpop.checker
	}
	if isDPoP {
		if v := req.Headers.Get("dpop"); v != "" {
			// Envoy joins repeated headers with ","; a proof has none, so
			// two headers stay two proofs.
			s.Proofs = strings.Split(v, ",")
		}
		scheme := req.Scheme
		if scheme == "" {
			scheme = req.Headers.Get("x-forwarded-proto")
		}
		s.URL = dpop.RequestURL(scheme, req.Host, req.Path)
	}
	if r.trustXFCC {
		s.ForwardedClientCert = req.Headers.Get("x-forwarded-client-cert")
	}
	return s
}

// plainRequest reports whether a request needs no sender checks beyond
// the downgrade rule: a Bearer token on a route that requires no binding.
func (r *Route) plainRequest(isDPoP bool, req *Request) bool {
	return !isDPoP && !r.requireDPoP && !r.requireMTLS && !r.trustXFCC && req.PeerCertificate == ""
}

// isDPoPError reports an error answered with a DPoP challenge.
func isDPoPError(err error) bool {
	return errors.Is(err, verify.ErrDPoPProofInvalid) || errors.Is(err, verify.ErrDPoPNonceRequired)
}
