// Package config loads tokengate's configuration: the YAML file, then
// TOKENGATE_* environment overrides, into a validated Config. Every problem
// is reported at once, each with its key path.
package config

import (
	"fmt"
	"time"
)

// Config is the whole configuration file.
type Config struct {
	Server    Server              `koanf:"server" yaml:"server"`
	Log       Log                 `koanf:"log" yaml:"log"`
	Verifiers map[string]Verifier `koanf:"verifiers" yaml:"verifiers"`
	Routes    []Route             `koanf:"routes" yaml:"routes"`
	// ScopeHierarchy says which scopes a broader scope implies
	// (transitively): a token with the key holds every listed scope too.
	ScopeHierarchy map[string][]string `koanf:"scope_hierarchy" yaml:"scope_hierarchy,omitempty"`
	// DPoP configures the checking of DPoP proofs.
	DPoP DPoP `koanf:"dpop" yaml:"dpop,omitempty"`
	// Assertion is tokengate's own signing key for upstream assertions
	// (routes with upstream_token.mode: assertion).
	Assertion Assertion `koanf:"assertion" yaml:"assertion,omitempty"`
}

// Server holds the listeners and the clock tolerance.
type Server struct {
	GRPCListen string   `koanf:"grpc_listen" yaml:"grpc_listen"`
	HTTPListen string   `koanf:"http_listen" yaml:"http_listen"`
	ClockSkew  Duration `koanf:"clock_skew" yaml:"clock_skew"`
	// TokenCacheSize bounds the verified-JWT cache (entries); 0 disables
	// it. Nil (unset) means DefaultTokenCacheSize.
	TokenCacheSize *int `koanf:"token_cache_size" yaml:"token_cache_size,omitempty"`
	// Pprof serves net/http/pprof under /debug/pprof/ on the HTTP port.
	Pprof bool `koanf:"pprof" yaml:"pprof,omitempty"`
}

// TokenCache returns the verified-JWT cache size: TokenCacheSize, or
// DefaultTokenCacheSize when it is unset.
func (s Server) TokenCache() int {
	if s.TokenCacheSize == nil {
		return DefaultTokenCacheSize
	}
	return *s.TokenCacheSize
}

// Log configures logging.
type Log struct {
	Level  string `koanf:"level" yaml:"level"`
	Format string `koanf:"format" yaml:"format"`
}

// Verifier types.
const (
	TypeJWT           = "jwt"
	TypeIntrospection = "introspection"
	TypeStatic        = "static"
)

// Verifier is one named verifier. Type decides which fields apply.
type Verifier struct {
	Type string `koanf:"type" yaml:"type"`

	// jwt
	Issuer                 string   `koanf:"issuer" yaml:"issuer,omitempty"`
	Audiences              []string `koanf:"audiences" yaml:"audiences,omitempty"`
	JWKSURI                string   `koanf:"jwks_uri" yaml:"jwks_uri,omitempty"`
	JWKSRefresh            Duration `koanf:"jwks_refresh" yaml:"jwks_refresh,omitempty"`
	JWKSMinRefetchInterval Duration `koanf:"jwks_min_refetch_interval" yaml:"jwks_min_refetch_interval,omitempty"`
	JWKSFile               string   `koanf:"jwks_file" yaml:"jwks_file,omitempty"`
	PublicKey              string   `koanf:"public_key" yaml:"public_key,omitempty"`
	PublicKeyFile          string   `koanf:"public_key_file" yaml:"public_key_file,omitempty"`
	HMACSecret             Secret   `koanf:"hmac_secret" yaml:"hmac_secret,omitempty"`
	HMACSecretFile         string   `koanf:"hmac_secret_file" yaml:"hmac_secret_file,omitempty"`
	HMACSecretEnv          string   `koanf:"hmac_secret_env" yaml:"hmac_secret_env,omitempty"`
	Algorithms             []string `koanf:"algorithms" yaml:"algorithms,omitempty"`
	ScopeClaim             string   `koanf:"scope_claim" yaml:"scope_claim,omitempty"`
	AllowInsecureHTTP      bool     `koanf:"allow_insecure_http" yaml:"allow_insecure_http,omitempty"`

	// identity-provider shapes (contract section 13)
	Issuers        []string            `koanf:"issuers" yaml:"issuers,omitempty"`
	ScopeClaims    []string            `koanf:"scope_claims" yaml:"scope_claims,omitempty"`
	AudienceClaim  string              `koanf:"audience_claim" yaml:"audience_claim,omitempty"`
	RequiredClaims map[string][]string `koanf:"required_claims" yaml:"required_claims,omitempty"`

	// introspection
	IntrospectionURL string   `koanf:"introspection_url" yaml:"introspection_url,omitempty"`
	ClientID         string   `koanf:"client_id" yaml:"client_id,omitempty"`
	ClientSecret     Secret   `koanf:"client_secret" yaml:"client_secret,omitempty"`
	ClientSecretFile string   `koanf:"client_secret_file" yaml:"client_secret_file,omitempty"`
	ClientSecretEnv  string   `koanf:"client_secret_env" yaml:"client_secret_env,omitempty"`
	ClientAuth       string   `koanf:"client_auth" yaml:"client_auth,omitempty"`
	Timeout          Duration `koanf:"timeout" yaml:"timeout,omitempty"`
	CacheTTL         Duration `koanf:"cache_ttl" yaml:"cache_ttl,omitempty"`

	// static
	Tokens StaticTokens `koanf:"tokens" yaml:"tokens,omitempty"`
}

// StaticToken is the identity a static development token stands for.
type StaticToken struct {
	Sub    string   `koanf:"sub" yaml:"sub"`
	Scopes []string `koanf:"scopes" yaml:"scopes,omitempty"`
}

// StaticTokens maps a token value to its identity. The token values are
// secrets and are never printed.
type StaticTokens map[string]StaticToken

// MarshalYAML prints the identities with every token value redacted.
func (t StaticTokens) MarshalYAML() (any, error) {
	out := make(map[string]StaticToken, len(t))
	i := 0
	for _, v := range t {
		i++
		out[fmt.Sprintf("%s-%d", Redacted, i)] = v
	}
	return out, nil
}

// Route is one entry of the ordered route table.
type Route struct {
	Name                 string            `koanf:"name" yaml:"name"`
	Match                Match             `koanf:"match" yaml:"match"`
	Verifiers            []string          `koanf:"verifiers" yaml:"verifiers,omitempty"`
	RequiredScopes       []string          `koanf:"required_scopes" yaml:"required_scopes,omitempty"`
	Resource             string            `koanf:"resource" yaml:"resource,omitempty"`
	ResourceName         string            `koanf:"resource_name" yaml:"resource_name,omitempty"`
	AuthorizationServers []string          `koanf:"authorization_servers" yaml:"authorization_servers,omitempty"`
	ClaimHeaders         map[string]string `koanf:"claim_headers" yaml:"claim_headers,omitempty"`
	ForwardAuthorization bool              `koanf:"forward_authorization" yaml:"forward_authorization"`
	AllowAnonymous       bool              `koanf:"allow_anonymous" yaml:"allow_anonymous,omitempty"`
	MCP                  *MCP              `koanf:"mcp" yaml:"mcp,omitempty"`
	// RequireDPoP accepts only DPoP-bound tokens with a valid proof.
	RequireDPoP bool `koanf:"require_dpop" yaml:"require_dpop,omitempty"`
	// RequireMTLSBinding accepts only certificate-bound tokens
	// (cnf.x5t#S256).
	RequireMTLSBinding bool `koanf:"require_mtls_binding" yaml:"require_mtls_binding,omitempty"`
	// TrustForwardedClientCert takes the client certificate from
	// x-forwarded-client-cert (set by a trusted proxy such as Istio's).
	TrustForwardedClientCert bool  `koanf:"trust_forwarded_client_cert" yaml:"trust_forwarded_client_cert,omitempty"`
	CORS                     *CORS `koanf:"cors" yaml:"cors,omitempty"`
	// UpstreamToken says what the upstream receives in Authorization.
	UpstreamToken UpstreamToken `koanf:"upstream_token" yaml:"upstream_token,omitempty"`
}

// Match selects requests for a route.
type Match struct {
	Hosts      []string `koanf:"hosts" yaml:"hosts,omitempty"`
	PathPrefix string   `koanf:"path_prefix" yaml:"path_prefix,omitempty"`
	PathExact  string   `koanf:"path_exact" yaml:"path_exact,omitempty"`
	Methods    []string `koanf:"methods" yaml:"methods,omitempty"`
}

// Redacted replaces every secret in printed configuration.
const Redacted = "<redacted>"

// Secret is a configuration value that is never printed.
type Secret string

// MarshalYAML prints "<redacted>" for a set secret.
func (s Secret) MarshalYAML() (any, error) {
	if s == "" {
		return "", nil
	}
	return Redacted, nil
}

// String never reveals the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// Duration is a time.Duration written as "60s", "15m" in the file.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("must be a duration like 60s or 15m, not %q", string(b))
	}
	*d = Duration(v)
	return nil
}

// MarshalText prints the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
