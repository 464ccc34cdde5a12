package envoycfg

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

var ports = Params{ListenPort: 10000, AdminPort: 10001, AuthzPort: 9191, UpstreamPort: 8000}

// routesOf parses a rendered configuration and returns its routes.
func routesOf(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var doc struct {
		StaticResources struct {
			Listeners []struct {
				FilterChains []struct {
					Filters []struct {
						TypedConfig struct {
							RouteConfig struct {
								VirtualHosts []struct {
									Routes []map[string]any `yaml:"routes"`
								} `yaml:"virtual_hosts"`
							} `yaml:"route_config"`
						} `yaml:"typed_config"`
					} `yaml:"filters"`
				} `yaml:"filter_chains"`
			} `yaml:"listeners"`
		} `yaml:"static_resources"`
	}
	require.NoError(t, yaml.Unmarshal(b, &doc))
	return doc.StaticResources.Listeners[0].FilterChains[0].Filters[0].TypedConfig.RouteConfig.VirtualHosts[0].Routes
}

func TestRenderRoutes(t *testing.T) {
	catchAll := map[string]any{
		"match": map[string]any{"prefix": "/"},
		"route": map[string]any{"cluster": "upstream", "timeout": "0s", "idle_timeout": "3600s"},
	}
	tests := []struct {
		name   string
		routes []Route
		want   []map[string]any
	}{
		{"none: the catch-all alone", nil, []map[string]any{catchAll}},
		{"rewrite and pin, before the catch-all", []Route{
			{Prefix: "/mcp/admin", PrefixRewrite: "/mcp", TokengateRoute: "admin"},
			{Prefix: "/public", PrefixRewrite: "/mcp"},
			{Prefix: `/odd "quoted": path`, TokengateRoute: `a "b": c`},
		}, []map[string]any{
			{
				"match": map[string]any{"prefix": "/mcp/admin"},
				"route": map[string]any{"cluster": "upstream", "timeout": "0s", "idle_timeout": "3600s", "prefix_rewrite": "/mcp"},
				"typed_per_filter_config": map[string]any{"envoy.filters.http.ext_authz": map[string]any{
					"@type":          "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
					"check_settings": map[string]any{"context_extensions": map[string]any{"tokengate_route": "admin"}},
				}},
			},
			{
				"match": map[string]any{"prefix": "/public"},
				"route": map[string]any{"cluster": "upstream", "timeout": "0s", "idle_timeout": "3600s", "prefix_rewrite": "/mcp"},
			},
			{
				"match": map[string]any{"prefix": `/odd "quoted": path`},
				"route": map[string]any{"cluster": "upstream", "timeout": "0s", "idle_timeout": "3600s"},
				"typed_per_filter_config": map[string]any{"envoy.filters.http.ext_authz": map[string]any{
					"@type":          "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
					"check_settings": map[string]any{"context_extensions": map[string]any{"tokengate_route": `a "b": c`}},
				}},
			},
			catchAll,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := ports
			p.Routes = tc.routes
			b, err := Render(p)
			require.NoError(t, err)
			assert.Equal(t, tc.want, routesOf(t, b))
		})
	}
}

func TestRenderRejectsRelativePrefixes(t *testing.T) {
	tests := []struct {
		route Route
		want  string
	}{
		{Route{Prefix: "mcp"}, `envoy: Routes[0].Prefix "mcp" must start with /`},
		{Route{Prefix: "/mcp/admin", PrefixRewrite: "mcp"}, `envoy: Routes[0].PrefixRewrite "mcp" must start with /`},
	}
	for _, tc := range tests {
		p := ports
		p.Routes = []Route{tc.route}
		_, err := Render(p)
		require.EqualError(t, err, tc.want)
	}
}

func TestRenderWithoutRoutesHasNoPerRouteConfig(t *testing.T) {
	b, err := Render(ports)
	require.NoError(t, err)
	for _, s := range []string{"typed_per_filter_config", "prefix_rewrite", "tokengate_route"} {
		assert.False(t, strings.Contains(string(b), s), s)
	}
}

// extAuthzOf parses a rendered configuration and returns the ext_authz
// filter's typed_config.
func extAuthzOf(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var doc struct {
		StaticResources struct {
			Listeners []struct {
				FilterChains []struct {
					Filters []struct {
						TypedConfig struct {
							HTTPFilters []struct {
								Name        string         `yaml:"name"`
								TypedConfig map[string]any `yaml:"typed_config"`
							} `yaml:"http_filters"`
						} `yaml:"typed_config"`
					} `yaml:"filters"`
				} `yaml:"filter_chains"`
			} `yaml:"listeners"`
		} `yaml:"static_resources"`
	}
	require.NoError(t, yaml.Unmarshal(b, &doc))
	for _, f := range doc.StaticResources.Listeners[0].FilterChains[0].Filters[0].TypedConfig.HTTPFilters {
		if f.Name == "envoy.filters.http.ext_authz" {
			return f.TypedConfig
		}
	}
	t.Fatal("no ext_authz filter")
	return nil
}

func TestRenderWithRequestBody(t *testing.T) {
	tests := []struct {
		name string
		with bool
		max  int
		want any // with_request_body, or nil for absent
	}{
		{"off by default", false, 0, nil},
		{"off ignores the size", false, 4096, nil},
		{"default size", true, 0, map[string]any{"max_request_bytes": DefaultMaxRequestBytes, "allow_partial_message": true, "pack_as_bytes": true}},
		{"given size", true, 4096, map[string]any{"max_request_bytes": 4096, "allow_partial_message": true, "pack_as_bytes": true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, httpMode := range []bool{false, true} {
				p := ports
				p.WithRequestBody, p.MaxRequestBytes = tc.with, tc.max
				if httpMode {
					p.AuthzHTTPPort = 9192
				}
				b, err := Render(p)
				require.NoError(t, err)
				got, ok := extAuthzOf(t, b)["with_request_body"]
				if tc.want == nil {
					assert.False(t, ok, "with_request_body must be absent (forward-auth mode %v)", httpMode)
					continue
				}
				assert.Equal(t, tc.want, got, "forward-auth mode %v", httpMode)
			}
		})
	}

	p := ports
	p.WithRequestBody, p.MaxRequestBytes = true, -1
	_, err := Render(p)
	require.EqualError(t, err, "envoy: MaxRequestBytes -1 must not be negative")
}

// listenerNames returns the names of a rendered configuration's listeners
// and clusters.
func listenerNames(t *testing.T, b []byte) (listeners, clusters []string) {
	t.Helper()
	var doc struct {
		StaticResources struct {
			Listeners []struct {
				Name string `yaml:"name"`
			} `yaml:"listeners"`
			Clusters []struct {
				Name string `yaml:"name"`
			} `yaml:"clusters"`
		} `yaml:"static_resources"`
	}
	require.NoError(t, yaml.Unmarshal(b, &doc))
	for _, l := range doc.StaticResources.Listeners {
		listeners = append(listeners, l.Name)
	}
	for _, c := range doc.StaticResources.Clusters {
		clusters = append(clusters, c.Name)
	}
	return listeners, clusters
}

func TestRenderBenchmarkListeners(t *testing.T) {
	p := Params{ListenPort: 10000, AdminPort: 10001, AuthzPort: 9191, DirectResponse: true, Listeners: []Listener{
		{Name: "none", Port: 10002},
		{Name: "jwt_authn", Port: 10003, JWTAuthn: &JWTAuthn{Issuer: "https://iss", Audience: "https://aud", JWKS: `{"keys":[]}`}},
		{Name: "ext_authz_noop", Port: 10004, ExtAuthzPort: 9300},
	}}
	b, err := Render(p)
	require.NoError(t, err)
	listeners, clusters := listenerNames(t, b)
	assert.Equal(t, []string{"ingress", "none", "jwt_authn", "ext_authz_noop"}, listeners)
	assert.Equal(t, []string{"tokengate", "authz_ext_authz_noop"}, clusters, "DirectResponse: no upstream cluster")
	assert.Contains(t, string(b), `local_jwks: { inline_string: "{\"keys\":[]}" }`)
	assert.Equal(t, 4, strings.Count(string(b), `direct_response: { status: 200, body: { inline_string: "ok" } }`))
	assert.Equal(t, 2, strings.Count(string(b), "name: envoy.filters.http.ext_authz\n"), "ingress and ext_authz_noop only")
	assert.Equal(t, 1, strings.Count(string(b), "name: envoy.filters.http.jwt_authn\n"))
}

func TestRenderRejectsBadListeners(t *testing.T) {
	jwt := &JWTAuthn{Issuer: "i", Audience: "a", JWKS: "{}"}
	tests := []struct {
		name string
		p    func(*Params)
		want string
	}{
		{"taken name", func(p *Params) { p.Listeners = []Listener{{Name: "ingress", Port: 1}} }, `envoy: Listeners[0].Name "ingress" is taken`},
		{"duplicate", func(p *Params) { p.Listeners = []Listener{{Name: "a", Port: 1}, {Name: "a", Port: 2}} }, `envoy: Listeners[1].Name "a" is taken`},
		{"bad name", func(p *Params) { p.Listeners = []Listener{{Name: "A b", Port: 1}} }, `envoy: Listeners[0].Name "A b": want lowercase letters, digits and _`},
		{"no port", func(p *Params) { p.Listeners = []Listener{{Name: "a"}} }, `envoy: Listeners[0].Port must be set`},
		{"incomplete jwt", func(p *Params) { p.Listeners = []Listener{{Name: "a", Port: 1, JWTAuthn: &JWTAuthn{Issuer: "i"}}} }, `envoy: Listeners[0].JWTAuthn needs Issuer, Audience and JWKS`},
		{"no upstream port", func(p *Params) { p.UpstreamPort = 0; p.Listeners = []Listener{{Name: "a", Port: 1, JWTAuthn: jwt}} }, `envoy: every port must be set`},
		{"rewrite without upstream", func(p *Params) { p.DirectResponse = true; p.Routes = []Route{{Prefix: "/a", PrefixRewrite: "/b"}} },
			`envoy: Routes[0].PrefixRewrite: there is no upstream to rewrite for with DirectResponse`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := ports
			tc.p(&p)
			_, err := Render(p)
			require.EqualError(t, err, tc.want)
		})
	}
}
