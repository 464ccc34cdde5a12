package verify_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/verify"
)

func TestStaticVerify(t *testing.T) {
	v, err := verify.NewStatic("dev", map[string]verify.StaticIdentity{
		"dev-alice": {Subject: "alice", Scopes: []string{"mcp:read", "mcp:write"}},
		"dev-bob":   {Subject: "bob"},
	})
	require.NoError(t, err)
	assert.Equal(t, verify.KindStatic, v.Kind())
	assert.Equal(t, "", v.Issuer())
	assert.Equal(t, "dev", v.Name())
	assert.True(t, v.Ready())

	tests := []struct {
		token   string
		want    *verify.Identity
		wantErr error
	}{
		{token: "dev-alice", want: &verify.Identity{Verifier: "dev", Subject: "alice", Scopes: []string{"mcp:read", "mcp:write"}}},
		{token: "dev-bob", want: &verify.Identity{Verifier: "dev", Subject: "bob"}},
		{token: "dev-carol", wantErr: verify.ErrTokenInactive},
		{token: "dev-alic", wantErr: verify.ErrTokenInactive},
		{token: "dev-alice ", wantErr: verify.ErrTokenInactive},
		{token: "DEV-ALICE", wantErr: verify.ErrTokenInactive},
		{token: "a.b.c", wantErr: verify.ErrTokenInactive},
	}
	for _, tc := range tests {
		t.Run(tc.token, func(t *testing.T) {
			// Audiences are ignored: static tokens carry none.
			id, err := v.Verify(context.Background(), verify.ParseToken(tc.token), []string{"https://mcp.example.com/mcp"})
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.False(t, verify.IsUnavailable(err))
				assert.NotContains(t, err.Error(), tc.token)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, id)
		})
	}
}

func TestNewStaticErrors(t *testing.T) {
	tests := []struct {
		name   string
		tokens map[string]verify.StaticIdentity
		want   string
	}{
		{name: "nil", tokens: nil, want: "tokens: at least one token is required"},
		{name: "empty", tokens: map[string]verify.StaticIdentity{}, want: "tokens: at least one token is required"},
		{name: "empty token", tokens: map[string]verify.StaticIdentity{"": {Subject: "x"}}, want: "tokens: a token must not be empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := verify.NewStatic("dev", tc.tokens)
			require.EqualError(t, err, tc.want)
			var oe *verify.OptionError
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, "tokens", oe.Key)
			assert.Nil(t, v)
		})
	}
}
