package verify_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/verify"
)

// TestClaimsDecoding: aud is a string or an array, scopes are a
// space-delimited string or an array, dates are non-negative finite numbers;
// a claim of another shape makes the token token_malformed.
func TestClaimsDecoding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		json    string
		wantErr bool
		check   func(t *testing.T, c verify.Claims)
	}{
		{name: "aud string", json: `{"aud":"a"}`, check: func(t *testing.T, c verify.Claims) {
			require.Equal(t, verify.StringList{"a"}, c.Audience)
		}},
		{name: "aud array", json: `{"aud":["a","b"]}`, check: func(t *testing.T, c verify.Claims) {
			require.Equal(t, verify.StringList{"a", "b"}, c.Audience)
		}},
		{name: "aud null", json: `{"aud":null}`, check: func(t *testing.T, c verify.Claims) {
			require.Nil(t, c.Audience)
		}},
		{name: "aud number", json: `{"aud":1}`, wantErr: true},
		{name: "aud array of numbers", json: `{"aud":[1]}`, wantErr: true},
		{name: "aud object", json: `{"aud":{"a":1}}`, wantErr: true},
		{name: "scope string", json: `{"scope":" a  b c "}`, check: func(t *testing.T, c verify.Claims) {
			require.Equal(t, verify.ScopeList{"a", "b", "c"}, c.Scope)
		}},
		{name: "scope string with a tab", json: `{"scope":"a\tb"}`, wantErr: true},
		{name: "scope empty string is present but empty", json: `{"scope":"","scp":"x"}`, check: func(t *testing.T, c verify.Claims) {
			require.NotNil(t, c.Scope)
			require.Empty(t, c.Scope)
		}},
		{name: "scp array", json: `{"scp":["a","b"]}`, check: func(t *testing.T, c verify.Claims) {
			require.Equal(t, verify.ScopeList{"a", "b"}, c.Scp)
		}},
		{name: "scope bool", json: `{"scope":true}`, wantErr: true},
		{name: "exp integer", json: `{"exp":1800000000}`, check: func(t *testing.T, c verify.Claims) {
			require.True(t, c.Expiry.Equal(time.Unix(1800000000, 0)))
		}},
		{name: "exp fractional", json: `{"exp":1800000000.25}`, check: func(t *testing.T, c verify.Claims) {
			require.True(t, c.Expiry.Equal(time.Unix(1800000000, 250e6)))
		}},
		{name: "exp exponent form", json: `{"exp":1.8e9}`, check: func(t *testing.T, c verify.Claims) {
			require.True(t, c.Expiry.Equal(time.Unix(1800000000, 0)))
		}},
		{name: "exp zero", json: `{"exp":0}`, check: func(t *testing.T, c verify.Claims) {
			require.True(t, c.Expiry.Equal(time.Unix(0, 0)))
		}},
		{name: "exp null is absent", json: `{"exp":null}`, check: func(t *testing.T, c verify.Claims) {
			require.Nil(t, c.Expiry)
		}},
		{name: "exp negative", json: `{"exp":-1}`, wantErr: true},
		{name: "exp beyond 2^40", json: `{"exp":1099511627777}`, wantErr: true},
		{name: "exp overflowing float64", json: `{"exp":1e400}`, wantErr: true},
		{name: "exp string", json: `{"exp":"1800000000"}`, wantErr: true},
		{name: "exp bool", json: `{"exp":true}`, wantErr: true},
		{name: "nbf array", json: `{"nbf":[1]}`, wantErr: true},
		{name: "iat object", json: `{"iat":{}}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := b64([]byte(`{"alg":"ES256"}`)) + "." + b64([]byte(tc.json)) + "."
			tok := verify.ParseToken(raw)
			err := tok.Malformed()
			if tc.wantErr {
				requireCode(t, verify.ErrTokenMalformed, err)
				return
			}
			require.NoError(t, err)
			tc.check(t, *tok.Claims)
		})
	}
}
