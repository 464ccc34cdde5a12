package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runCmd calls a subcommand and returns its exit code and outputs.
func runCmd(f func([]string, io.Writer, io.Writer) int, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := f(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestKeysGenerateAndMint runs generate then mint and verifies the token.
func TestKeysGenerateAndMint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "k")
	code, out, errOut := runCmd(runKeysGenerate, "--alg", "ES256", "--kid", "cli-key", "--out", dir)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, []string{
		filepath.Join(dir, "private.pem"), filepath.Join(dir, "public.pem"), filepath.Join(dir, "jwks.json"),
	}, strings.Split(strings.TrimSuffix(out, "\n"), "\n"))

	code, out, errOut = runCmd(runTokenMint,
		"--key", filepath.Join(dir, "private.pem"), "--alg", "ES256", "--kid", "cli-key",
		"--iss", "https://iss", "--aud", "a1", "--aud", "a2", "--sub", "alice",
		"--scope", "read write", "--ttl", "5m",
		"--claim", "n=42", "--claim", "admin=true", "--claim", `roles=["x","y"]`,
		"--claim", "name=bob", "--claim", "null=null", "--typ", "at+jwt")
	require.Equal(t, 0, code, errOut)
	require.True(t, strings.HasSuffix(out, "\n"))
	token := strings.TrimSuffix(out, "\n")

	data, err := os.ReadFile(filepath.Join(dir, "jwks.json"))
	require.NoError(t, err)
	set, err := jwk.Parse(data)
	require.NoError(t, err)
	payload, err := jws.Verify([]byte(token), jws.WithKeySet(set))
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal(payload, &c))
	assert.Equal(t, "https://iss", c["iss"])
	assert.Equal(t, "alice", c["sub"])
	assert.Equal(t, []any{"a1", "a2"}, c["aud"])
	assert.Equal(t, "read write", c["scope"])
	assert.EqualValues(t, 300, c["exp"].(float64)-c["iat"].(float64))
	assert.EqualValues(t, 42, c["n"])
	assert.Equal(t, true, c["admin"])
	assert.Equal(t, []any{"x", "y"}, c["roles"])
	assert.Equal(t, "bob", c["name"])
	assert.Equal(t, "null", c["null"])
}

// TestExitCodes checks the 0/1/2 exit code contract.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runCmd(runKeysGenerate, "--alg", "HS256", "--out", dir)
	require.Equal(t, 0, code, errOut)
	secret := filepath.Join(dir, "secret")

	tests := []struct {
		name    string
		cmd     func([]string, io.Writer, io.Writer) int
		args    []string
		want    int
		wantErr string
	}{
		{name: "generate ok", cmd: runKeysGenerate, args: []string{"--alg", "EdDSA", "--out", filepath.Join(dir, "ed")}, want: 0},
		{name: "generate bad alg", cmd: runKeysGenerate, args: []string{"--alg", "XS256", "--out", dir}, want: 1, wantErr: "--alg"},
		{name: "generate existing file", cmd: runKeysGenerate, args: []string{"--alg", "HS256", "--out", dir}, want: 1, wantErr: secret},
		{name: "generate missing out", cmd: runKeysGenerate, args: []string{"--alg", "ES256"}, want: 2, wantErr: "--out"},
		{name: "generate unknown flag", cmd: runKeysGenerate, args: []string{"--bogus"}, want: 2, wantErr: "bogus"},
		{name: "generate help", cmd: runKeysGenerate, args: []string{"-h"}, want: 0, wantErr: "usage:"},
		{name: "generate stray arg", cmd: runKeysGenerate, args: []string{"--alg", "ES256", "--out", dir, "extra"}, want: 2, wantErr: "extra"},
		{name: "mint ok", cmd: runTokenMint, args: []string{"--key", secret, "--alg", "HS256", "--iss", "i", "--aud", "a", "--sub", "s"}, want: 0},
		{name: "mint bad alg", cmd: runTokenMint, args: []string{"--key", secret, "--alg", "none", "--iss", "i", "--aud", "a", "--sub", "s"}, want: 1, wantErr: "--alg"},
		{name: "mint wrong key for alg", cmd: runTokenMint, args: []string{"--key", secret, "--alg", "RS256", "--iss", "i", "--aud", "a", "--sub", "s"}, want: 1, wantErr: secret},
		{name: "mint missing key file", cmd: runTokenMint, args: []string{"--key", filepath.Join(dir, "nope"), "--alg", "HS256", "--iss", "i", "--aud", "a", "--sub", "s"}, want: 1, wantErr: "nope"},
		{name: "mint override iss", cmd: runTokenMint, args: []string{"--key", secret, "--alg", "HS256", "--iss", "i", "--aud", "a", "--sub", "s", "--claim", "iss=x"}, want: 1, wantErr: "iss"},
		{name: "mint missing aud", cmd: runTokenMint, args: []string{"--key", secret, "--alg", "HS256", "--iss", "i", "--sub", "s"}, want: 2, wantErr: "--aud"},
		{name: "mint bad claim", cmd: runTokenMint, args: []string{"--claim", "novalue"}, want: 2, wantErr: "claim"},
		{name: "mint help", cmd: runTokenMint, args: []string{"--help"}, want: 0, wantErr: "usage:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(tc.cmd, tc.args...)
			assert.Equal(t, tc.want, code, errOut)
			assert.Contains(t, errOut, tc.wantErr)
			if tc.want != 0 {
				assert.Empty(t, out)
			}
		})
	}
}
