package authz

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/jose"
	"github.com/tokengate/tokengate/keys"
	"github.com/tokengate/tokengate/upstream"
	"github.com/tokengate/tokengate/verify"
	"github.com/tokengate/tokengate/verify/dpop"
)

// BuildOptions are the inputs of a Policy that do not come from the file.
type BuildOptions struct {
	// Logger receives verifier warnings; nil means slog.Default().
	Logger *slog.Logger
	// LookupEnv reads *_env secrets; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Now is the verifiers' clock; nil means time.Now.
	Now func() time.Time
	// HTTPClient is used for identity-provider calls; nil means a default.
	HTTPClient *http.Client
	// OnJWKSFetch is told the result of every JWKS fetch.
	OnJWKSFetch func(verifier, result string, keys int)
	// OnIntrospection is told the duration of every introspection request.
	OnIntrospection func(verifier string, d time.Duration)
	// OnCache is told every cache lookup's result ("hit" or "miss") for the
	// named cache.
	OnCache func(cache, result string)
	// Previous is the policy being replaced (nil at start-up): its
	// assertion keys stay published until their assertions expire.
	Previous *Policy
}

// Build compiles a validated configuration into a Policy. Key files and
// secrets are read and parsed here, so every mistake surfaces at start-up;
// the returned error is a *config.Error naming each key path.
func Build(cfg *config.Config, o BuildOptions) (*Policy, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	var probs []config.Problem
	verifiers := map[string]verify.Verifier{}
	p := &Policy{
		byName: map[string]*Route{}, metadata: map[string]*Route{}, tokens: newTokenCache(cfg, o),
		broader: broaderScopes(cfg.ScopeHierarchy),
	}
	for _, name := range sortedKeys(cfg.Verifiers) {
		v, prob := buildVerifier(name, cfg.Verifiers[name], cfg.Server.ClockSkew.D(), o)
		if prob != nil {
			probs = append(probs, *prob)
			continue
		}
		verifiers[name] = v
		p.verifiers = append(p.verifiers, v)
	}
	headerSet := map[string]bool{
		HeaderSub: true, HeaderIss: true, HeaderScopes: true, HeaderClientID: true, HeaderVerifier: true,
		HeaderMCPMethod: true, HeaderMCPName: true,
	}
	for _, rc := range cfg.Routes {
		for h := range rc.ClaimHeaders {
			headerSet[strings.ToLower(h)] = true
		}
	}
	p.identityHeaders = sortedKeys(headerSet)
	for i, rc := range cfg.Routes {
		r, err := buildRoute(rc, verifiers, cfg.Verifiers, p.identityHeaders, p.tokens, dpopAlgorithms(cfg))
		if err != nil {
			probs = append(probs, config.Problem{Path: fmt.Sprintf("routes[%d].resource", i), Msg: err.Error()})
			continue
		}
		p.routes = append(p.routes, r)
		p.byName[r.Name] = r
		if r.resource != "" {
			mp, _ := metadataPath(r.resource)
			if _, taken := p.metadata[mp]; !taken {
				p.metadata[mp] = r
			}
		}
	}
	var prev *upstream.Signer
	if o.Previous != nil && o.Previous.upstream != nil {
		prev = o.Previous.upstream.Signer
	}
	set, err := upstream.Build(cfg, upstream.Options{Previous: prev, Lookup: o.LookupEnv, Client: o.HTTPClient, Now: o.Now, Logger: o.Logger})
	var cerr *config.Error
	switch {
	case errors.As(err, &cerr):
		probs = append(probs, cerr.Problems...)
	case err != nil:
		probs = append(probs, config.Problem{Path: "assertion", Msg: err.Error()})
	}
	if len(probs) > 0 {
		return nil, &config.Error{Problems: probs}
	}
	if p.dpop, err = buildDPoP(cfg, o); err != nil {
		return nil, &config.Error{Problems: []config.Problem{err.(config.Problem)}}
	}
	p.upstream = set
	for i, r := range p.routes {
		r.upstream = set.Routes[i]
	}
	return p, nil
}

// newTokenCache returns the cache every route's chain shares: it keeps the
// claims routes copy into headers and interns the configured audiences.
func newTokenCache(cfg *config.Config, o BuildOptions) *verify.TokenCache {
	co := verify.CacheOptions{Size: cfg.Server.TokenCache(), Now: o.Now, OnLookup: cacheHook(o.OnCache, "token")}
	// A bound token's cnf is checked on every request, cached or not.
	co.ClaimNames = []string{verify.ConfirmationClaim}
	seen := map[string]bool{verify.ConfirmationClaim: true}
	for _, rc := range cfg.Routes {
		for _, h := range sortedKeys(rc.ClaimHeaders) {
			if c := rc.ClaimHeaders[h]; !seen[c] {
				seen[c] = true
				co.ClaimNames = append(co.ClaimNames, c)
			}
		}
		if rc.Resource != "" {
			co.Audiences = append(co.Audiences, rc.Resource)
		}
	}
	// Tokens for a verifier with audiences of its own carry those.
	for _, name := range sortedKeys(cfg.Verifiers) {
		co.Audiences = append(co.Audiences, cfg.Verifiers[name].Audiences...)
	}
	return verify.NewTokenCache(co)
}

// dpopAlgorithms are the proof algorithms accepted.
func dpopAlgorithms(cfg *config.Config) []string {
	if len(cfg.DPoP.Algorithms) > 0 {
		return cfg.DPoP.Algorithms
	}
	return dpop.DefaultAlgorithms
}

func buildRoute(rc config.Route, verifiers map[string]verify.Verifier, vcs map[string]config.Verifier, identity []string, tokens *verify.TokenCache, dpopAlgs []string) (*Route, error) {
	r := &Route{
		Name:        rc.Name,
		pathPrefix:  rc.Match.PathPrefix,
		pathExact:   rc.Match.PathExact,
		methods:     rc.Match.Methods,
		anonymous:   rc.AllowAnonymous,
		required:    rc.RequiredScopes,
		resource:    rc.Resource,
		authServers: rc.AuthorizationServers,
		forwardAuth: rc.ForwardAuthorization,
		scopeParam:  strings.Join(rc.RequiredScopes, " "),
		mcp:         compileMCP(rc.MCP),
		requireDPoP: rc.RequireDPoP,
		requireMTLS: rc.RequireMTLSBinding,
		trustXFCC:   rc.TrustForwardedClientCert,
		dpopAlgs:    strings.Join(dpopAlgs, " "),
		cors:        compileCORS(rc.CORS, rc.Match.Methods),
	}
	for _, h := range rc.Match.Hosts {
		r.hosts = append(r.hosts, strings.ToLower(h))
	}
	var cands []verify.Candidate
	for _, name := range rc.Verifiers {
		v, ok := verifiers[name]
		if !ok {
			continue // reported by the verifier's own problem
		}
		c := verify.Candidate{Verifier: v}
		if len(vcs[name].Audiences) == 0 && rc.Resource != "" {
			c.Audiences = []string{rc.Resource}
		}
		cands = append(cands, c)
		if v.Kind() == verify.KindJWT && len(rc.AuthorizationServers) == 0 && !contains(r.authServers, v.Issuer()) {
			r.authServers = append(r.authServers, v.Issuer())
		}
	}
	r.chain = verify.NewChain(cands, tokens)
	for _, h := range sortedKeys(rc.ClaimHeaders) {
		r.claimHeaders = append(r.claimHeaders, claimHeader{header: strings.ToLower(h), claim: rc.ClaimHeaders[h]})
	}
	r.strip = append(r.strip, identity...)
	if !r.forwardAuth {
		r.strip = append(r.strip, "authorization", "proxy-authorization")
	}
	r.guard = NewHeaderGuard(r.strip...)
	if r.resource != "" {
		var err error
		if r.metadataURL, err = metadataURL(r.resource); err != nil {
			return nil, err
		}
		doc := map[string]any{
			"resource":                 r.resource,
			"authorization_servers":    nonNil(r.authServers),
			"scopes_supported":         supportedScopes(rc),
			"bearer_methods_supported": []string{"header"},
			// RFC 9449 section 5.1: DPoP proofs are always accepted.
			"dpop_signing_alg_values_supported": dpopAlgs,
		}
		if rc.RequireDPoP {
			doc["dpop_bound_access_tokens_required"] = true
		}
		if rc.RequireMTLSBinding {
			doc["tls_client_certificate_bound_access_tokens"] = true // RFC 8705 section 3.4
		}
		if rc.ResourceName != "" {
			doc["resource_name"] = rc.ResourceName
		}
		if r.metadataJSON, err = json.Marshal(doc); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// supportedScopes are the scopes a route's requests may need: its required
// scopes and every operation rule's, never offline_access.
func supportedScopes(rc config.Route) []string {
	out := []string{}
	add := func(scopes []string) {
		for _, sc := range scopes {
			if sc != config.OfflineAccess && !contains(out, sc) {
				out = append(out, sc)
			}
		}
	}
	add(rc.RequiredScopes)
	if rc.MCP != nil {
		for _, op := range rc.MCP.Operations {
			add(op.Scopes)
		}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// buildVerifier builds one verifier, or returns the problem that stops it,
// at its key path. cfg is validated: a jwt verifier sets at most one key
// source (config's check is the one that says so).
func buildVerifier(name string, vc config.Verifier, skew time.Duration, o BuildOptions) (verify.Verifier, *config.Problem) {
	prefix := "verifiers." + name
	problem := func(key string, err error) *config.Problem {
		return &config.Problem{Path: prefix + "." + key, Msg: err.Error()}
	}
	// optionProblem places a constructor's *verify.OptionError at its key;
	// rename maps the constructor's key to the configuration key it came
	// from where they differ.
	optionProblem := func(err error, rename map[string]string) *config.Problem {
		var oe *verify.OptionError
		if !errors.As(err, &oe) {
			return &config.Problem{Path: prefix, Msg: err.Error()}
		}
		key := oe.Key
		if k, ok := rename[key]; ok {
			key = k
		}
		return problem(key, oe.Err)
	}
	switch vc.Type {
	case config.TypeJWT:
		keys, sourceKey, err := jwtKeys(vc, o.LookupEnv)
		if err != nil {
			return nil, problem(sourceKey, err)
		}
		v, err := verify.NewJWT(verify.JWTOptions{
			Name:       name,
			Issuer:     vc.Issuer,
			Audiences:  vc.Audiences,
			Algorithms: algs(vc.Algorithms),
			ScopeClaim: vc.ScopeClaim,
			ClockSkew:  skew,
			// identity-provider shapes (contract section 13)
			Issuers:        vc.Issuers,
			ScopeClaims:    vc.ScopeClaims,
			AudienceClaim:  vc.AudienceClaim,
			RequiredClaims: vc.RequiredClaims,
			Now:            o.Now,
			Keys:           keys,
			Remote: verify.RemoteOptions{
				Refresh:            vc.JWKSRefresh.D(),
				MinRefetchInterval: vc.JWKSMinRefetchInterval.D(),
				AllowInsecureHTTP:  vc.AllowInsecureHTTP,
				Client:             o.HTTPClient,
				Logger:             o.Logger,
				OnFetch:            o.OnJWKSFetch,
			},
		})
		if err != nil {
			return nil, optionProblem(err, map[string]string{keys.Key(): sourceKey})
		}
		return v, nil
	case config.TypeIntrospection:
		secretKey, secret, err := config.ReadSecret("client_secret", vc.ClientSecret, vc.ClientSecretFile, vc.ClientSecretEnv, o.LookupEnv)
		if err != nil {
			return nil, problem(secretKey, err)
		}
		v, err := verify.NewIntrospection(verify.IntrospectionOptions{
			Name:              name,
			URL:               vc.IntrospectionURL,
			ClientID:          vc.ClientID,
			ClientSecret:      secret,
			ClientAuth:        vc.ClientAuth,
			Timeout:           vc.Timeout.D(),
			CacheTTL:          vc.CacheTTL.D(),
			Issuer:            vc.Issuer,
			Audiences:         vc.Audiences,
			ClockSkew:         skew,
			Now:               o.Now,
			AllowInsecureHTTP: vc.AllowInsecureHTTP,
			Client:            o.HTTPClient,
			Logger:            o.Logger,
			OnRequest:         o.OnIntrospection,
			OnCache:           cacheHook(o.OnCache, "introspection"),
		})
		if err != nil {
			return nil, optionProblem(err, map[string]string{"client_secret": secretKey})
		}
		return v, nil
	case config.TypeStatic:
		tokens := make(map[string]verify.StaticIdentity, len(vc.Tokens))
		for tok, st := range vc.Tokens {
			tokens[tok] = verify.StaticIdentity{Subject: st.Sub, Scopes: st.Scopes}
		}
		v, err := verify.NewStatic(name, tokens)
		if err != nil {
			return nil, optionProblem(err, nil)
		}
		o.Logger.Warn("static verifier is for development only", "verifier", name)
		return v, nil
	default:
		return nil, problem("type", fmt.Errorf("%q verifiers are not supported yet", vc.Type))
	}
}

// jwtKeys reads the key source a jwt verifier sets (key files and secrets
// are read here) and returns it with its configuration key. With none set,
// the keys come from the jwks_uri in the issuer's metadata.
func jwtKeys(vc config.Verifier, lookup func(string) (string, bool)) (verify.KeySource, string, error) {
	switch {
	case vc.JWKSURI != "":
		return verify.RemoteJWKS(vc.JWKSURI), "jwks_uri", nil
	case vc.JWKSFile != "":
		doc, err := os.ReadFile(vc.JWKSFile)
		return verify.LocalJWKS(doc), "jwks_file", err
	case vc.PublicKey != "":
		return verify.PublicKeys([]byte(vc.PublicKey)), "public_key", nil
	case vc.PublicKeyFile != "":
		pem, err := os.ReadFile(vc.PublicKeyFile)
		return verify.PublicKeys(pem), "public_key_file", err
	case vc.HMACSecret != "" || vc.HMACSecretFile != "" || vc.HMACSecretEnv != "":
		key, secret, err := hmacSecret(vc, lookup)
		return verify.SharedSecret(secret), key, err
	}
	return verify.DiscoveredJWKS(), "issuer", nil
}

// hmacSecret reads the secret from whichever of hmac_secret,
// hmac_secret_file and hmac_secret_env is set, decoding a "base64:" value.
// It returns the key name for error messages. Errors never hold the secret.
func hmacSecret(vc config.Verifier, lookup func(string) (string, bool)) (string, []byte, error) {
	key, raw, err := config.ReadSecret("hmac_secret", vc.HMACSecret, vc.HMACSecretFile, vc.HMACSecretEnv, lookup)
	if err != nil {
		return key, nil, err
	}
	secret, err := keys.DecodeSecret(raw)
	if err != nil {
		return key, nil, err
	}
	return key, secret, nil
}

// algs types a configured algorithm list; validation checked the names.
func algs(names []string) []jose.Alg {
	out := make([]jose.Alg, 0, len(names))
	for _, n := range names {
		out = append(out, jose.Alg(n))
	}
	return out
}

// cacheHook binds a cache name to an OnCache hook (nil stays nil).
func cacheHook(f func(cache, result string), cache string) func(string) {
	if f == nil {
		return nil
	}
	return func(result string) { f(cache, result) }
}
