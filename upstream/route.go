package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/verify"
)

// Route computes what one route's upstream receives in Authorization. A nil
// *Route is mode none.
type Route struct {
	mode      string
	asserter  *Asserter
	exchanger *Exchanger
}

// Mode is the route's upstream_token.mode: none, forward, assertion or
// exchange.
func (r *Route) Mode() string {
	if r == nil {
		return config.UpstreamNone
	}
	return r.mode
}

// Authorization returns the value the upstream's Authorization header must
// carry for an allowed request, or "" when the header must be removed (mode
// none). The client's own Authorization header never reaches the upstream
// except in mode forward, whose value is "Bearer " + req.Token. Errors wrap
// ErrExchangeRefused (403 access_denied, error_description
// "token_exchange_refused"), ErrExchangeUnavailable or
// ErrAssertionUnavailable (503), or verify.ErrTokenExpired when the client
// token expires too soon to sign for (401 invalid_token).
func (r *Route) Authorization(ctx context.Context, req Request) (string, error) {
	switch r.Mode() {
	case config.UpstreamAssertion, config.UpstreamExchange:
		return r.AuthorizationHashed(ctx, HashToken(req.Token), req)
	}
	return r.AuthorizationHashed(ctx, TokenHash{}, req)
}

// AuthorizationHashed is Authorization for a caller that has the SHA-256 of
// req.Token already (the verified-token cache computes one): it saves
// hashing the token twice on the hot path. h must be HashToken(req.Token).
func (r *Route) AuthorizationHashed(ctx context.Context, h TokenHash, req Request) (string, error) {
	switch r.Mode() {
	case config.UpstreamForward:
		return "Bearer " + req.Token, nil
	case config.UpstreamAssertion:
		return r.asserter.Authorization(h, req)
	case config.UpstreamExchange:
		return r.exchanger.Authorization(ctx, h, req)
	}
	return "", nil
}

// Options are Build's optional dependencies.
type Options struct {
	// Previous is the Signer of the configuration being replaced (nil at
	// start-up): see NewSigner.
	Previous *Signer
	// Lookup reads environment variables (client_secret_env); nil means
	// os.LookupEnv.
	Lookup func(string) (string, bool)
	// Client carries token exchanges; nil means a shared client with many
	// idle connections per host and each route's timeout.
	Client *http.Client
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Set is the upstream-credential side of one configuration.
type Set struct {
	// Signer signs assertions and serves the JWKS; nil when the
	// configuration has no assertion block.
	Signer *Signer
	// Routes holds one *Route per configured route, in the same order.
	Routes []*Route
}

// JWKS returns the assertion JWKS document, or nil when there is no
// assertion key (serve 404 then).
func (s *Set) JWKS() []byte {
	if s == nil || s.Signer == nil {
		return nil
	}
	return s.Signer.JWKS()
}

// Build prepares the upstream credentials of a validated configuration:
// loads the assertion keys and the exchange client secrets. It does no
// network I/O. Errors are a *config.Error naming each key path.
func Build(cfg *config.Config, o Options) (*Set, error) {
	if o.Lookup == nil {
		o.Lookup = os.LookupEnv
	}
	set := &Set{Routes: make([]*Route, len(cfg.Routes))}
	if cfg.Assertion.Enabled() {
		s, err := NewSigner(cfg.Assertion, o.Previous, SignerOptions{Now: o.Now})
		if err != nil {
			return nil, err
		}
		set.Signer = s
	}
	var probs []config.Problem
	for i, rc := range cfg.Routes {
		p := fmt.Sprintf("routes[%d].upstream_token", i)
		u := rc.UpstreamToken
		r := &Route{mode: rc.UpstreamMode()}
		switch r.mode {
		case config.UpstreamNone, config.UpstreamForward:
		case config.UpstreamAssertion:
			if set.Signer == nil {
				probs = append(probs, config.Problem{Path: p + ".mode", Msg: "assertion requires the top-level assertion block (issuer and key_file)"})
				continue
			}
			r.asserter = set.Signer.Asserter(rc.Name, u.Audience, u.TTL.D())
		case config.UpstreamExchange:
			key, secret, err := config.ReadSecret("client_secret", u.ClientSecret, u.ClientSecretFile, u.ClientSecretEnv, o.Lookup)
			if err != nil {
				probs = append(probs, config.Problem{Path: p + "." + key, Msg: err.Error()})
				continue
			}
			issuer, insecure, _ := cfg.ExchangeIssuer(rc)
			ex, err := NewExchanger(ExchangeOptions{
				Route: rc.Name, TokenEndpoint: u.TokenEndpoint, Issuer: issuer,
				AllowInsecureHTTP: u.AllowInsecureHTTP || (u.TokenEndpoint == "" && insecure),
				ClientID:          u.ClientID, ClientSecret: secret, ClientAuth: u.ClientAuth,
				Audience: u.Audience, Scopes: u.Scopes, Timeout: u.Timeout.D(),
				Client: o.Client, Now: o.Now, Logger: o.Logger,
			})
			if err != nil {
				probs = append(probs, optionProblem(p, err))
				continue
			}
			r.exchanger = ex
		default:
			probs = append(probs, config.Problem{Path: p + ".mode", Msg: fmt.Sprintf("%q is not one of none, forward, assertion, exchange", u.Mode)})
			continue
		}
		set.Routes[i] = r
	}
	if len(probs) > 0 {
		return nil, &config.Error{Problems: probs}
	}
	return set, nil
}

// optionProblem places a constructor's *verify.OptionError at its key
// below prefix (at prefix itself for any other error).
func optionProblem(prefix string, err error) config.Problem {
	var oe *verify.OptionError
	if !errors.As(err, &oe) {
		return config.Problem{Path: prefix, Msg: err.Error()}
	}
	return config.Problem{Path: prefix + "." + oe.Key, Msg: oe.Err.Error()}
}
