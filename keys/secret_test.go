package keys

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDecodeSecret covers prefixed, raw and malformed secrets.
func TestDecodeSecret(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []byte
		wantErr bool
	}{
		{name: "std base64", in: "base64:aGVsbG8gd29ybGQ=", want: []byte("hello world")},
		{name: "std base64 with newline", in: "base64:aGVsbG8gd29ybGQ=\n", want: []byte("hello world")},
		{name: "surrounding whitespace", in: "  base64:aGVsbG8gd29ybGQ=\r\n", want: []byte("hello world")},
		{name: "unpadded", in: "base64:aGVsbG8gd29ybGQ", want: []byte("hello world")},
		{name: "url safe", in: "base64:-_-_", want: []byte{0xfb, 0xff, 0xbf}},
		{name: "std alphabet", in: "base64:+/+/", want: []byte{0xfb, 0xff, 0xbf}},
		{name: "raw", in: "s3cr3t-value\n", want: []byte("s3cr3t-value")},
		{name: "raw keeps inner spaces", in: "a b c", want: []byte("a b c")},
		{name: "bad base64", in: "base64:not*valid*base64!!", wantErr: true},
		{name: "prefix only", in: "base64:", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "whitespace only", in: " \n\t", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeSecret(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				assert.Nil(t, got)
				if body := tc.in[min(len(tc.in), len("base64:")):]; body != "" {
					assert.NotContains(t, err.Error(), body, "error must not leak the secret")
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestMinSecretLen checks the per-algorithm minimum secret sizes.
func TestMinSecretLen(t *testing.T) {
	tests := map[string]int{
		"HS256": 32, "HS384": 48, "HS512": 64,
		"RS256": 0, "ES256": 0, "EdDSA": 0, "": 0, "HS1024": 0,
	}
	for alg, want := range tests {
		assert.Equal(t, want, MinSecretLen(alg), alg)
	}
}

// TestAlgorithms checks the supported algorithm list.
func TestAlgorithms(t *testing.T) {
	assert.Equal(t, []string{
		"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA", "HS256", "HS384", "HS512",
	}, Algorithms())
}
