package config

import (
	"strings"
)

// Quick-start variables: one verifier and one catch-all route from the
// environment alone, used when no configuration file is given. The same
// settings are read under FastMCP 2.x's names, so a FastMCP deployment can
// move its token checks to the gateway unchanged; TOKENGATE_* wins when both
// are set.
var quickStartVars = []struct {
	name, fastmcp string
}{
	{"TOKENGATE_JWT_JWKS_URI", "FASTMCP_SERVER_AUTH_JWT_JWKS_URI"},
	{"TOKENGATE_JWT_PUBLIC_KEY", "FASTMCP_SERVER_AUTH_JWT_PUBLIC_KEY"},
	{"TOKENGATE_JWT_HMAC_SECRET", ""},
	{"TOKENGATE_JWT_ISSUER", "FASTMCP_SERVER_AUTH_JWT_ISSUER"},
	{"TOKENGATE_JWT_AUDIENCE", "FASTMCP_SERVER_AUTH_JWT_AUDIENCE"},
	{"TOKENGATE_JWT_ALGORITHM", "FASTMCP_SERVER_AUTH_JWT_ALGORITHM"},
	{"TOKENGATE_REQUIRED_SCOPES", "FASTMCP_SERVER_AUTH_JWT_REQUIRED_SCOPES"},
	{"TOKENGATE_INTROSPECTION_URL", "FASTMCP_SERVER_AUTH_INTROSPECTION_URL"},
	{"TOKENGATE_INTROSPECTION_CLIENT_ID", "FASTMCP_SERVER_AUTH_INTROSPECTION_CLIENT_ID"},
	{"TOKENGATE_INTROSPECTION_CLIENT_SECRET", "FASTMCP_SERVER_AUTH_INTROSPECTION_CLIENT_SECRET"},
	{"TOKENGATE_RESOURCE", ""},
}

// Names of what the quick start builds.
const (
	QuickStartJWT           = "jwt"
	QuickStartIntrospection = "introspection"
	QuickStartRoute         = "default"
)

// quickStart builds configuration values from the quick-start variables.
// ok is false when none is set. Problems name the variable to fix.
func quickStart(environ []string) (values map[string]any, probs []Problem, ok bool) {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	get := map[string]string{}
	from := map[string]string{}
	for _, qv := range quickStartVars {
		if v := env[qv.name]; v != "" {
			get[qv.name], from[qv.name] = v, qv.name
		} else if qv.fastmcp != "" && env[qv.fastmcp] != "" {
			get[qv.name], from[qv.name] = env[qv.fastmcp], qv.fastmcp
		}
	}
	if len(get) == 0 {
		return nil, nil, false
	}
	name := func(n string) string {
		if f := from[n]; f != "" {
			return f
		}
		return n
	}
	verifiers := map[string]any{}
	var routeVerifiers []any
	jwtSource := get["TOKENGATE_JWT_JWKS_URI"] != "" || get["TOKENGATE_JWT_PUBLIC_KEY"] != "" || get["TOKENGATE_JWT_HMAC_SECRET"] != ""
	if jwtSource {
		v := map[string]any{"type": TypeJWT, "issuer": get["TOKENGATE_JWT_ISSUER"]}
		if v["issuer"] == "" {
			probs = append(probs, Problem{Path: name("TOKENGATE_JWT_ISSUER"), Msg: "is required with a JWT key source"})
		}
		switch {
		case get["TOKENGATE_JWT_JWKS_URI"] != "":
			v["jwks_uri"] = get["TOKENGATE_JWT_JWKS_URI"]
		case get["TOKENGATE_JWT_PUBLIC_KEY"] != "":
			v["public_key"] = get["TOKENGATE_JWT_PUBLIC_KEY"]
		default:
			v["hmac_secret"] = get["TOKENGATE_JWT_HMAC_SECRET"]
		}
		if a := get["TOKENGATE_JWT_AUDIENCE"]; a != "" {
			v["audiences"] = splitList(a)
		}
		if a := get["TOKENGATE_JWT_ALGORITHM"]; a != "" {
			v["algorithms"] = []any{a}
		}
		if v["audiences"] == nil && get["TOKENGATE_RESOURCE"] == "" {
			probs = append(probs, Problem{Path: name("TOKENGATE_JWT_AUDIENCE"), Msg: "TOKENGATE_JWT_AUDIENCE or TOKENGATE_RESOURCE is required (tokens must be bound to an audience)"})
		}
		verifiers[QuickStartJWT] = v
		routeVerifiers = append(routeVerifiers, QuickStartJWT)
	} else {
		for _, n := range []string{"TOKENGATE_JWT_ISSUER", "TOKENGATE_JWT_AUDIENCE", "TOKENGATE_JWT_ALGORITHM"} {
			if get[n] != "" {
				probs = append(probs, Problem{Path: name(n), Msg: "needs a key source: TOKENGATE_JWT_JWKS_URI, TOKENGATE_JWT_PUBLIC_KEY or TOKENGATE_JWT_HMAC_SECRET"})
			}
		}
	}
	if u := get["TOKENGATE_INTROSPECTION_URL"]; u != "" {
		v := map[string]any{
			"type":              TypeIntrospection,
			"introspection_url": u,
			"client_id":         get["TOKENGATE_INTROSPECTION_CLIENT_ID"],
			"client_secret":     get["TOKENGATE_INTROSPECTION_CLIENT_SECRET"],
		}
		if v["client_id"] == "" {
			probs = append(probs, Problem{Path: name("TOKENGATE_INTROSPECTION_CLIENT_ID"), Msg: "is required with TOKENGATE_INTROSPECTION_URL"})
		}
		if v["client_secret"] == "" {
			probs = append(probs, Problem{Path: name("TOKENGATE_INTROSPECTION_CLIENT_SECRET"), Msg: "is required with TOKENGATE_INTROSPECTION_URL"})
		}
		verifiers[QuickStartIntrospection] = v
		routeVerifiers = append(routeVerifiers, QuickStartIntrospection)
	}
	if len(routeVerifiers) == 0 {
		probs = append(probs, Problem{Path: "TOKENGATE_JWT_JWKS_URI", Msg: "the quick start needs a verifier: TOKENGATE_JWT_JWKS_URI, TOKENGATE_JWT_PUBLIC_KEY, TOKENGATE_JWT_HMAC_SECRET or TOKENGATE_INTROSPECTION_URL"})
	}
	route := map[string]any{
		"name":      QuickStartRoute,
		"match":     map[string]any{"path_prefix": "/"},
		"verifiers": routeVerifiers,
	}
	if s := get["TOKENGATE_REQUIRED_SCOPES"]; s != "" {
		route["required_scopes"] = splitList(s)
	}
	if r := get["TOKENGATE_RESOURCE"]; r != "" {
		route["resource"] = r
	}
	return map[string]any{"verifiers": verifiers, "routes": []any{route}}, probs, true
}

// splitList splits a comma- or space-separated list.
func splitList(s string) []any {
	var out []any
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, f)
	}
	return out
}

// quickStartPaths maps what the quick start builds back to the variable that
// set it, so validation problems name the variable.
var quickStartPaths = map[string]string{
	"verifiers." + QuickStartJWT + ".issuer":                      "TOKENGATE_JWT_ISSUER",
	"verifiers." + QuickStartJWT + ".jwks_uri":                    "TOKENGATE_JWT_JWKS_URI",
	"verifiers." + QuickStartJWT + ".public_key":                  "TOKENGATE_JWT_PUBLIC_KEY",
	"verifiers." + QuickStartJWT + ".hmac_secret":                 "TOKENGATE_JWT_HMAC_SECRET",
	"verifiers." + QuickStartJWT + ".algorithms[0]":               "TOKENGATE_JWT_ALGORITHM",
	"verifiers." + QuickStartIntrospection + ".introspection_url": "TOKENGATE_INTROSPECTION_URL",
	"verifiers." + QuickStartIntrospection + ".client_id":         "TOKENGATE_INTROSPECTION_CLIENT_ID",
	"verifiers." + QuickStartIntrospection + ".client_secret":     "TOKENGATE_INTROSPECTION_CLIENT_SECRET",
	"routes[0].resource":                                          "TOKENGATE_JWT_AUDIENCE",
	"routes[0].required_scopes":                                   "TOKENGATE_REQUIRED_SCOPES",
}

func quickStartPath(path string) (string, bool) {
	v, ok := quickStartPaths[path]
	return v, ok
}
