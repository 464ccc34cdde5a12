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
	"github.com/tokengate/tokengate/keys"
	"github.com/tokengate/tokengate/upstream"
	"github.com/tokengate/tokengate/verify"
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
		v, err := buildVerifier(name, cfg.Verifiers[name], cfg.Server.ClockSkew.D(), o)
		if err != nil {
			probs = append(probs, err.(config.Problem))
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
		r, err := buildRoute(rc, verifiers, cfg.Verifiers, p.identityHeaders, p.tokens)
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
	seen := map[string]bool{}
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

func buildRoute(rc config.Route, verifiers map[string]verify.Verifier, vcs map[string]config.Verifier, identity []string, tokens *verify.TokenCache) (*Route, error) {
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

// buildVerifier builds one verifier; its error is a config.Problem.
func buildVerifier(name string, vc config.Verifier, skew time.Duration, o BuildOptions) (verify.Verifier, error) {
	prefix := "verifiers." + name
	problem := func(key string, err error) error {
		return config.Problem{Path: prefix + "." + key, Msg: err.Error()}
	}
	switch vc.Type {
	case config.TypeJWT:
		jo := verify.JWTOptions{
			Name:       name,
			Issuer:     vc.Issuer,
			Audiences:  vc.Audiences,
			Algorithms: vc.Algorithms,
			ScopeClaim: vc.ScopeClaim,
			ClockSkew:  skew,
			// identity-provider shapes (contract section 13)
			Issuers:        vc.Issuers,
			ScopeClaims:    vc.ScopeClaims,
			AudienceClaim:  vc.AudienceClaim,
			RequiredClaims: vc.RequiredClaims,
			Now:            o.Now,
			JWKSURI:        vc.JWKSURI,
			Remote: verify.RemoteOptions{
				Refresh:            vc.JWKSRefresh.D(),
				MinRefetchInterval: vc.JWKSMinRefetchInterval.D(),
				AllowInsecureHTTP:  vc.AllowInsecureHTTP,
				Client:             o.HTTPClient,
				Logger:             o.Logger,
				OnFetch:            o.OnJWKSFetch,
			},
		}
		sourceKey := "jwks_uri"
		var err error
		switch {
		case vc.JWKSFile != "":
			sourceKey = "jwks_file"
			if jo.JWKS, err = os.ReadFile(vc.JWKSFile); err != nil {
				return nil, problem(sourceKey, err)
			}
		case vc.PublicKey != "":
			sourceKey = "public_key"
			jo.PublicKeyPEM = []byte(vc.PublicKey)
		case vc.PublicKeyFile != "":
			sourceKey = "public_key_file"
			if jo.PublicKeyPEM, err = os.ReadFile(vc.PublicKeyFile); err != nil {
				return nil, problem(sourceKey, err)
			}
		case vc.HMACSecret != "" || vc.HMACSecretFile != "" || vc.HMACSecretEnv != "":
			sourceKey, jo.HMACSecret, err = hmacSecret(vc, o.LookupEnv)
			if err != nil {
				return nil, problem(sourceKey, err)
			}
		case vc.JWKSURI == "":
			// No key source: find jwks_uri in the issuer's metadata.
			jo.Discover = true
		}
		v, err := verify.NewJWT(jo)
		if err != nil {
			key, msg, found := strings.Cut(err.Error(), ": ")
			switch {
			case !found:
				key, msg = sourceKey, err.Error()
			case key == "jwks_uri" || key == "jwks_file" || key == "public_key" || key == "hmac_secret":
				key = sourceKey
			}
			return nil, config.Problem{Path: prefix + "." + key, Msg: msg}
		}
		return v, nil
	case config.TypeIntrospection:
		secretKey, secret, err := clientSecret(vc, o.LookupEnv)
		if err != nil {
			return nil, problem(secretKey, err)
		}
		if vc.ClientID == "" {
			return nil, problem("client_id", fmt.Errorf("is required"))
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
			return nil, optionProblem(prefix, "introspection_url", err)
		}
		return v, nil
	case config.TypeStatic:
		tokens := make(map[string]verify.StaticIdentity, len(vc.Tokens))
		for tok, st := range vc.Tokens {
			tokens[tok] = verify.StaticIdentity{Subject: st.Sub, Scopes: st.Scopes}
		}
		v, err := verify.NewStatic(name, tokens)
		if err != nil {
			return nil, optionProblem(prefix, "tokens", err)
		}
		o.Logger.Warn("static verifier is for development only", "verifier", name)
		return v, nil
	default:
		return nil, problem("type", fmt.Errorf("%q verifiers are not supported yet", vc.Type))
	}
}

// hmacSecret reads the secret from whichever of hmac_secret,
// hmac_secret_file and hmac_secret_env is set, decoding a "base64:" value.
// It returns the key name for error messages. Errors never hold the secret.
func hmacSecret(vc config.Verifier, lookup func(string) (string, bool)) (string, []byte, error) {
	var raw string
	key := "hmac_secret"
	switch {
	case vc.HMACSecretFile != "":
		key = "hmac_secret_file"
		b, err := os.ReadFile(vc.HMACSecretFile)
		if err != nil {
			return key, nil, err
		}
		raw = string(b)
	case vc.HMACSecretEnv != "":
		key = "hmac_secret_env"
		v, ok := lookup(vc.HMACSecretEnv)
		if !ok || v == "" {
			return key, nil, fmt.Errorf("environment variable %s is not set", vc.HMACSecretEnv)
		}
		raw = v
	default:
		raw = string(vc.HMACSecret)
	}
	secret, err := keys.DecodeSecret(raw)
	if err != nil {
		return key, nil, err
	}
	return key, secret, nil
}

// clientSecret reads the introspection client secret from exactly one of
// client_secret, client_secret_file (one trailing newline trimmed) and
// client_secret_env. It returns the key name for error messages. Errors never
// hold the secret.
func clientSecret(vc config.Verifier, lookup func(string) (string, bool)) (string, string, error) {
	set := 0
	for _, s := range []string{string(vc.ClientSecret), vc.ClientSecretFile, vc.ClientSecretEnv} {
		if s != "" {
			set++
		}
	}
	switch {
	case set == 0:
		return "client_secret", "", fmt.Errorf("one of client_secret, client_secret_file or client_secret_env is required")
	case set > 1:
		return "client_secret", "", fmt.Errorf("only one of client_secret, client_secret_file or client_secret_env may be set")
	case vc.ClientSecretFile != "":
		b, err := os.ReadFile(vc.ClientSecretFile)
		if err != nil {
			return "client_secret_file", "", err
		}
		secret := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if secret == "" {
			return "client_secret_file", "", fmt.Errorf("%s is empty", vc.ClientSecretFile)
		}
		return "client_secret_file", secret, nil
	case vc.ClientSecretEnv != "":
		v, ok := lookup(vc.ClientSecretEnv)
		if !ok || v == "" {
			return "client_secret_env", "", fmt.Errorf("environment variable %s is not set", vc.ClientSecretEnv)
		}
		return "client_secret_env", v, nil
	default:
		return "client_secret", string(vc.ClientSecret), nil
	}
}

// optionProblem turns a verifier constructor's "key: message" error into a
// Problem at that key, or at fallback when the error names no key.
func optionProblem(prefix, fallback string, err error) config.Problem {
	key, msg, found := strings.Cut(err.Error(), ": ")
	if !found || strings.ContainsAny(key, " ") {
		key, msg = fallback, err.Error()
	}
	return config.Problem{Path: prefix + "." + key, Msg: msg}
}

// cacheHook binds a cache name to an OnCache hook (nil stays nil).
func cacheHook(f func(cache, result string), cache string) func(string) {
	if f == nil {
		return nil
	}
	return func(result string) { f(cache, result) }
}
