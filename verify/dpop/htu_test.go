package dpop

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNormalizeHTU is the normalization table (RFC 9449 section 4.3, RFC
// 3986 sections 6.2.2 and 6.2.3).
func TestNormalizeHTU(t *testing.T) {
	tests := []struct {
		in        string
		dropQuery bool
		want      string // "" means an error
	}{
		{in: "https://mcp.example.com/mcp", want: "https://mcp.example.com/mcp"},
		{in: "HTTPS://MCP.Example.COM/mcp", want: "https://mcp.example.com/mcp"},
		{in: "https://mcp.example.com/MCP", want: "https://mcp.example.com/MCP"}, // path case is kept
		{in: "https://mcp.example.com:443/mcp", want: "https://mcp.example.com/mcp"},
		{in: "https://mcp.example.com:0443/mcp", want: "https://mcp.example.com/mcp"},
		{in: "http://mcp.example.com:80/mcp", want: "http://mcp.example.com/mcp"},
		{in: "https://mcp.example.com:80/mcp", want: "https://mcp.example.com:80/mcp"},
		{in: "http://mcp.example.com:443/mcp", want: "http://mcp.example.com:443/mcp"},
		{in: "https://mcp.example.com:/mcp", want: "https://mcp.example.com/mcp"},
		{in: "https://mcp.example.com:8443/mcp", want: "https://mcp.example.com:8443/mcp"},
		{in: "https://mcp.example.com", want: "https://mcp.example.com/"},
		{in: "https://mcp.example.com/%6d%63%70", want: "https://mcp.example.com/mcp"},
		{in: "https://mcp.example.com/a%2fb", want: "https://mcp.example.com/a%2Fb"},
		{in: "https://mcp.example.com/a%2Fb", want: "https://mcp.example.com/a%2Fb"},
		{in: "https://mcp.example.com/a%7Eb", want: "https://mcp.example.com/a~b"},
		{in: "https://mcp.example.com/a b", want: "https://mcp.example.com/a%20b"},
		{in: "https://mcp.example.com/a/./b/../c", want: "https://mcp.example.com/a/c"},
		{in: "https://mcp.example.com/a/..", want: "https://mcp.example.com/"},
		{in: "https://mcp.example.com/../../a", want: "https://mcp.example.com/a"},
		{in: "https://[::1]:8443/mcp", want: "https://[::1]:8443/mcp"},
		{in: "https://[FE80::1]:443/mcp", want: "https://[fe80::1]/mcp"},
		{in: "https://127.0.0.1:443/mcp", want: "https://127.0.0.1/mcp"},
		{in: "https://mcp.example.com/mcp?x=1", dropQuery: true, want: "https://mcp.example.com/mcp"},
		{in: "https://mcp.example.com/mcp#f", dropQuery: true, want: "https://mcp.example.com/mcp"},
		{in: "https://mcp.example.com?x=1", dropQuery: true, want: "https://mcp.example.com/"},
		// Refused.
		{in: "https://mcp.example.com/mcp?x=1"},
		{in: "https://mcp.example.com/mcp?"},
		{in: "https://mcp.example.com/mcp#f"},
		{in: "ftp://mcp.example.com/mcp"},
		{in: "mcp.example.com/mcp"},
		{in: "/mcp"},
		{in: ""},
		{in: "https:///mcp"},
		{in: "https://user@mcp.example.com/mcp"},
		{in: "https://mcp.example.com:https/mcp"},
		{in: "https://mcp.example.com:99999/mcp"},
		{in: "https://mcp.example.com/a%zz"},
		{in: "https://mcp.example.com/a%2"},
		{in: "https://mc%70.example.com/mcp"},
		{in: "https://[::1/mcp"},
		{in: "https://[]/mcp"},
		{in: "https://[::1]x/mcp"},
		{in: "https://exa mple.com/mcp"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeHTU(tt.in, tt.dropQuery)
			if tt.want == "" {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			again, err := NormalizeHTU(got, false)
			require.NoError(t, err)
			assert.Equal(t, got, again, "normalization is idempotent")
		})
	}
}

func TestRequestURL(t *testing.T) {
	assert.Equal(t, "https://mcp.example.com:8443/mcp?x=1", RequestURL("https", "mcp.example.com:8443", "/mcp?x=1"))
}
