package authz

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/verify"
)

func TestBearerToken(t *testing.T) {
	maxTok := strings.Repeat("a", verify.MaxTokenSize)
	tests := []struct {
		name    string
		header  string
		want    string
		wantErr error
	}{
		{"no header", "", "", verify.ErrTokenMissing},
		{"basic scheme", "Basic YWxpY2U6c2VjcmV0", "", verify.ErrTokenMissing},
		{"scheme glued to token", "Bearerabc", "", verify.ErrTokenMissing},
		{"DPoP scheme", "DPoP abc", "", verify.ErrTokenMissing},
		{"bearer alone", "Bearer", "", verify.ErrRequestMalformed},
		{"bearer and spaces", "Bearer   ", "", verify.ErrRequestMalformed},
		{"two tokens", "Bearer a b", "", verify.ErrRequestMalformed},
		{"two headers joined by Envoy", "Bearer a,Bearer b", "", verify.ErrRequestMalformed},
		{"padding inside", "Bearer a=b", "", verify.ErrRequestMalformed},
		{"only padding", "Bearer ==", "", verify.ErrRequestMalformed},
		{"quote", `Bearer "abc"`, "", verify.ErrRequestMalformed},
		{"too large", "Bearer " + maxTok + "a", "", verify.ErrTokenTooLarge},
		{"too large and not one token", "Bearer " + maxTok + " b", "", verify.ErrTokenTooLarge},
		{"exactly the limit", "Bearer " + maxTok, maxTok, nil},
		{"canonical", "Bearer abc.def-_~+/", "abc.def-_~+/", nil},
		{"lower case scheme", "bearer abc", "abc", nil},
		{"upper case scheme", "BEARER abc", "abc", nil},
		{"several spaces", "Bearer   abc", "abc", nil},
		{"trailing padding", "Bearer abc==", "abc==", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bearerToken(tt.header)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestHostOnly(t *testing.T) {
	tests := []struct{ authority, want string }{
		{"mcp.example.com", "mcp.example.com"},
		{"mcp.example.com:8443", "mcp.example.com"},
		{"MCP.Example.COM:443", "mcp.example.com"},
		{"mcp.example.com.", "mcp.example.com"},
		{"mcp.example.com.:443", "mcp.example.com"},
		{"127.0.0.1:9000", "127.0.0.1"},
		{"[::1]:8080", "::1"},
		{"[::1]", "::1"},
		{"[2001:DB8::1]:443", "2001:db8::1"},
		{"", ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, hostOnly(tt.authority), "hostOnly(%q)", tt.authority)
	}
}

func TestPathOnly(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/mcp", "/mcp"},
		{"/mcp?session=1", "/mcp"},
		{"/mcp?next=/other#frag", "/mcp"},
		{"/mcp#frag?x", "/mcp"},
		{"/", "/"},
		{"?only=query", ""},
		{"", ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, PathOnly(tt.path), "pathOnly(%q)", tt.path)
	}
}

func TestMetadataURL(t *testing.T) {
	tests := []struct{ resource, wantURL, wantPath string }{
		{"https://mcp.example.com/mcp", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource/mcp"},
		{"https://mcp.example.com/mcp/", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource/mcp"},
		{"https://mcp.example.com/a/b", "https://mcp.example.com/.well-known/oauth-protected-resource/a/b", "/.well-known/oauth-protected-resource/a/b"},
		{"https://api.example.com", "https://api.example.com/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource"},
		{"https://api.example.com/", "https://api.example.com/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource"},
		{"https://mcp.example.com:8443/mcp", "https://mcp.example.com:8443/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource/mcp"},
		{"https://[::1]:8443/mcp", "https://[::1]:8443/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource/mcp"},
		{"http://127.0.0.1:8000/mcp", "http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource/mcp"},
		{"https://mcp.example.com/a%20b", "https://mcp.example.com/.well-known/oauth-protected-resource/a%20b", "/.well-known/oauth-protected-resource/a%20b"},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			got, err := metadataURL(tt.resource)
			require.NoError(t, err)
			assert.Equal(t, tt.wantURL, got)
			gotPath, err := metadataPath(tt.resource)
			require.NoError(t, err)
			assert.Equal(t, tt.wantPath, gotPath)
		})
	}
	_, err := metadataURL("https://bad host/%zz")
	assert.Error(t, err)
}

func TestRouteMatches(t *testing.T) {
	tests := []struct {
		name               string
		route              Route
		host, path, method string
		want               bool
	}{
		{"prefix", Route{pathPrefix: "/mcp"}, "h", "/mcp/x", "GET", true},
		{"prefix is a plain string prefix, like Envoy's", Route{pathPrefix: "/mcp"}, "h", "/mcpx", "GET", true},
		{"prefix miss", Route{pathPrefix: "/mcp"}, "h", "/api", "GET", false},
		{"exact", Route{pathExact: "/healthz"}, "h", "/healthz", "GET", true},
		{"exact miss", Route{pathExact: "/healthz"}, "h", "/healthz/", "GET", false},
		{"paths are case-sensitive", Route{pathPrefix: "/mcp"}, "h", "/MCP", "GET", false},
		{"method", Route{pathPrefix: "/", methods: []string{"GET", "POST"}}, "h", "/", "POST", true},
		{"method miss", Route{pathPrefix: "/", methods: []string{"GET"}}, "h", "/", "PUT", false},
		{"host", Route{pathPrefix: "/", hosts: []string{"mcp.example.com"}}, "mcp.example.com", "/", "GET", true},
		{"host glob", Route{pathPrefix: "/", hosts: []string{"*.internal"}}, "a.b.internal", "/", "GET", true},
		{"host glob miss", Route{pathPrefix: "/", hosts: []string{"*.internal"}}, "internal", "/", "GET", false},
		{"second host", Route{pathPrefix: "/", hosts: []string{"a.example", "b.example"}}, "b.example", "/", "GET", true},
		{"host miss", Route{pathPrefix: "/", hosts: []string{"a.example"}}, "a.example.evil", "/", "GET", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.route.matches(tt.host, tt.path, tt.method))
		})
	}
}

func TestValidHeaderValue(t *testing.T) {
	assert.False(t, validHeaderValue("line\nbreak"))
	assert.True(t, validHeaderValue("tab\tok"))
}
