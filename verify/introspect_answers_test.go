package verify_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/verify"
)

// TestIntrospectionEndpointAnswers checks contract section 4's mapping of
// the endpoint's HTTP answers: a 400 naming the token is a 401 (never a
// 503), a 401 or 403 is a 503 with an error log line naming tokengate's
// client credentials, and everything else that is not 200 stays a 503.
func TestIntrospectionEndpointAnswers(t *testing.T) {
	const credsLine = "the endpoint rejected tokengate's client credentials"
	tests := []struct {
		name   string
		status int
		body   string
		want   *verify.Error
		// wantLevel is the level of the log line, "" for none.
		wantLevel string
		credsLog  bool
	}{
		{name: "400 invalid_request", status: 400, body: `{"error":"invalid_request"}`, want: verify.ErrTokenInactive},
		{name: "400 invalid_token", status: 400, body: `{"error":"invalid_token","error_description":"not ours"}`, want: verify.ErrTokenInactive},
		// A certified OpenID provider asked about a JWT it did not issue.
		{name: "400 unsupported_token_type (provider fixture)", status: 400,
			body: `{"error":"unsupported_token_type","error_description":"The token type is not supported: the token was not issued by this server"}`,
			want: verify.ErrTokenInactive},
		{name: "401 from the endpoint", status: 401, body: `{"error":"invalid_client"}`, want: verify.ErrIntrospectionUnavailable, wantLevel: "ERROR", credsLog: true},
		{name: "401 without a body", status: 401, body: ``, want: verify.ErrIntrospectionUnavailable, wantLevel: "ERROR", credsLog: true},
		{name: "403 from the endpoint", status: 403, body: `{"error":"access_denied"}`, want: verify.ErrIntrospectionUnavailable, wantLevel: "ERROR", credsLog: true},
		{name: "400 invalid_client", status: 400, body: `{"error":"invalid_client"}`, want: verify.ErrIntrospectionUnavailable, wantLevel: "ERROR", credsLog: true},
		{name: "400 other error", status: 400, body: `{"error":"server_busy"}`, want: verify.ErrIntrospectionUnavailable, wantLevel: "WARN"},
		{name: "400 not JSON", status: 400, body: `bad request`, want: verify.ErrIntrospectionUnavailable, wantLevel: "WARN"},
		{name: "400 error not a string", status: 400, body: `{"error":["invalid_token"]}`, want: verify.ErrIntrospectionUnavailable, wantLevel: "WARN"},
		{name: "404", status: 404, body: `not found`, want: verify.ErrIntrospectionUnavailable, wantLevel: "WARN"},
		{name: "429", status: 429, body: `{"error":"slow_down"}`, want: verify.ErrIntrospectionUnavailable, wantLevel: "WARN"},
		{name: "502", status: 502, body: `{"error":"invalid_token"}`, want: verify.ErrIntrospectionUnavailable, wantLevel: "WARN"},
		{name: "503", status: 503, body: ``, want: verify.ErrIntrospectionUnavailable, wantLevel: "WARN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newIntroIdP(t, tc.status, tc.body)
			var logs bytes.Buffer
			v := newIntro(t, p, func(o *verify.IntrospectionOptions) {
				o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			id, err := v.Verify(context.Background(), verify.ParseToken(introToken), nil)
			assert.Nil(t, id)
			require.ErrorIs(t, err, tc.want)
			assert.Equal(t, tc.want.Code(), verify.Code(err))
			assert.Equal(t, tc.want.Unavailable(), verify.IsUnavailable(err))
			for _, secret := range []string{introToken, introSecret, url.QueryEscape(introSecret)} {
				assert.NotContains(t, err.Error(), secret)
				assert.NotContains(t, logs.String(), secret)
			}
			if tc.wantLevel == "" {
				assert.Empty(t, logs.String())
			} else {
				assert.Equal(t, 1, strings.Count(logs.String(), "\n"), logs.String())
				assert.Contains(t, logs.String(), "level="+tc.wantLevel)
			}
			if tc.credsLog {
				assert.Contains(t, logs.String(), credsLine)
				assert.Contains(t, logs.String(), "client credentials (client_id, client_secret, client_auth) are misconfigured")
			} else {
				assert.NotContains(t, logs.String(), "credentials")
			}
			// A refused token is not cached: the next attempt asks again.
			_, err = v.Verify(context.Background(), verify.ParseToken(introToken), nil)
			require.ErrorIs(t, err, tc.want)
			assert.Equal(t, int64(2), p.requests.Load())
		})
	}
}

// TestIntrospectionCredentialsErrorLoggedDespiteWarnings: the error line
// about the client credentials is not swallowed by the rate limit of an
// earlier, unrelated warning.
func TestIntrospectionCredentialsErrorLoggedDespiteWarnings(t *testing.T) {
	p := newIntroIdP(t, 502, ``)
	var logs bytes.Buffer
	v := newIntro(t, p, func(o *verify.IntrospectionOptions) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	_, err := v.Verify(context.Background(), verify.ParseToken(introToken), nil)
	require.ErrorIs(t, err, verify.ErrIntrospectionUnavailable)
	p.set(401, `{"error":"invalid_client"}`)
	_, err = v.Verify(context.Background(), verify.ParseToken(introToken), nil)
	require.ErrorIs(t, err, verify.ErrIntrospectionUnavailable)
	assert.Contains(t, logs.String(), "level=WARN")
	assert.Contains(t, logs.String(), "level=ERROR")
	assert.Contains(t, logs.String(), "client credentials (client_id, client_secret, client_auth) are misconfigured")
}
