package config

import (
	"time"

	"github.com/tokengate/tokengate/verify"
)

// Defaults of the server keys. The verifier keys' defaults are verify's
// (verify.DefaultJWKSRefresh, ...): applyDefaults fills them in from there.
const (
	DefaultGRPCListen     = ":9191"
	DefaultHTTPListen     = ":9192"
	DefaultClockSkew      = 60 * time.Second
	DefaultTokenCacheSize = 100000
)

func (c *Config) applyDefaults() {
	if c.Server.GRPCListen == "" {
		c.Server.GRPCListen = DefaultGRPCListen
	}
	if c.Server.HTTPListen == "" {
		c.Server.HTTPListen = DefaultHTTPListen
	}
	if c.Server.TokenCacheSize == nil {
		size := DefaultTokenCacheSize
		c.Server.TokenCacheSize = &size
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	for i := range c.Routes {
		c.Routes[i].applyMCPDefaults()
	}
	for name, v := range c.Verifiers {
		switch v.Type {
		case TypeJWT:
			if v.remoteKeys() {
				if v.JWKSRefresh == 0 {
					v.JWKSRefresh = Duration(verify.DefaultJWKSRefresh)
				}
				if v.JWKSMinRefetchInterval == 0 {
					v.JWKSMinRefetchInterval = Duration(verify.DefaultJWKSMinRefetchInterval)
				}
			}
		case TypeIntrospection:
			if v.Timeout == 0 {
				v.Timeout = Duration(verify.DefaultIntrospectionTimeout)
			}
			if v.CacheTTL == 0 {
				v.CacheTTL = Duration(verify.DefaultIntrospectionCacheTTL)
			}
			if v.ClientAuth == "" {
				v.ClientAuth = verify.DefaultClientAuth
			}
		}
		c.Verifiers[name] = v
	}
	c.upstreamDefaults()
}
