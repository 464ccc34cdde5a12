package verify_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/verify"
)

// Issue 10, findings 3 to 5: claims and header members are matched by exact
// name, a duplicate member name makes a token malformed, scopes are split on
// 0x20 only and must be scope-tokens, and identity values that could not be
// sent as header values make a token malformed, in every verifier.

// expandClaims fills the placeholders of a claims template: {iss}, {aud},
// {exp} (an hour ahead), {past} (an hour ago), {other} (another audience).
func expandClaims(s string) string {
	return strings.NewReplacer(
		"{iss}", testIssuer,
		"{aud}", testAudience,
		"{other}", "api://other",
		"{exp}", strconv.FormatInt(testNow.Unix()+3600, 10),
		"{past}", strconv.FormatInt(testNow.Unix()-3600, 10),
	).Replace(s)
}

// signRawJSON signs exactly the given header and payload JSON texts, which
// json.Marshal could not produce (duplicate or case-variant names).
func signRawJSON(t testing.TB, k *testKey, header, payload string) string {
	t.Helper()
	input := b64([]byte(header)) + "." + b64([]byte(payload))
	a, ok := jwa.LookupSignatureAlgorithm(k.alg)
	require.True(t, ok)
	signer, err := jws.SignerFor(a)
	require.NoError(t, err)
	sig, err := signer.Sign(k.priv, []byte(input))
	require.NoError(t, err)
	return input + "." + b64(sig)
}

const okHeader = `{"alg":"ES256","kid":"hard","typ":"JWT"}`

// hardeningRows are signed tokens: header, claims and the verdict of a JWT
// verifier for the route audience.
var hardeningRows = []struct {
	name       string
	header     string // default okHeader
	claims     string // expandClaims template
	scopeClaim string // JWTOptions.ScopeClaim
	wantErr    error
	wantSub    string
	wantScopes []string
	wantClient string
}{
	// Finding 3: exact names.
	{name: "issue: aud other, AUD ours", claims: `{"iss":"{iss}","exp":{exp},"aud":"{other}","AUD":"{aud}"}`, wantErr: verify.ErrAudienceMismatch},
	{name: "AUD alone is no aud", claims: `{"iss":"{iss}","exp":{exp},"AUD":"{aud}"}`, wantErr: verify.ErrAudienceMismatch},
	{name: "Aud alone is no aud", claims: `{"iss":"{iss}","exp":{exp},"Aud":["{aud}"]}`, wantErr: verify.ErrAudienceMismatch},
	{name: "issue: exp past, EXP future", claims: `{"iss":"{iss}","aud":"{aud}","exp":{past},"EXP":{exp}}`, wantErr: verify.ErrTokenExpired},
	{name: "EXP alone is no exp", claims: `{"iss":"{iss}","aud":"{aud}","EXP":{exp}}`, wantErr: verify.ErrTokenMalformed},
	{name: "issue: sub alice, SUB admin", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"sub":"alice","SUB":"admin"}`, wantSub: "alice"},
	{name: "SUB alone is no sub", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"SUB":"admin"}`, wantSub: ""},
	{name: "issue: ſcope (long s) is not scope", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"ſcope":"mcp:read"}`, wantScopes: nil},
	{name: "issue: iſſ (long s) is not iss", claims: `{"iſſ":"{iss}","aud":"{aud}","exp":{exp}}`, wantErr: verify.ErrIssuerUntrusted},
	{name: "escaped long s in scp is not scp", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"\u017fcp":["admin"],"scp":["mcp:read"]}`, wantScopes: []string{"mcp:read"}},
	{name: "CLIENT_ID is not client_id", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"CLIENT_ID":"evil","azp":"app"}`, wantClient: "app"},
	{name: "escaped name is the same name", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"s\u0075b":"alice"}`, wantSub: "alice"},
	// Finding 3: duplicate names, at any depth, in payload and header.
	{name: "duplicate aud", claims: `{"iss":"{iss}","exp":{exp},"aud":"{other}","aud":"{aud}"}`, wantErr: verify.ErrTokenMalformed},
	{name: "duplicate exp", claims: `{"iss":"{iss}","aud":"{aud}","exp":{past},"exp":{exp}}`, wantErr: verify.ErrTokenMalformed},
	{name: "duplicate sub", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"sub":"alice","sub":"admin"}`, wantErr: verify.ErrTokenMalformed},
	{name: "duplicate iss", claims: `{"iss":"x","iss":"{iss}","aud":"{aud}","exp":{exp}}`, wantErr: verify.ErrTokenMalformed},
	{name: "duplicate by escape", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"sub":"alice","\u0073ub":"admin"}`, wantErr: verify.ErrTokenMalformed},
	{name: "duplicate of an unread claim", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"email":"a@x","email":"b@x"}`, wantErr: verify.ErrTokenMalformed},
	{name: "duplicate in a nested object", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"cnf":{"jkt":"a","jkt":"b"}}`, wantErr: verify.ErrTokenMalformed},
	{name: "same name at two depths is fine", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"sub":"alice","act":{"sub":"bob"}}`, wantSub: "alice"},
	{name: "issue: header duplicate alg", header: `{"alg":"ES256","alg":"none","kid":"hard"}`, claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp}}`, wantErr: verify.ErrTokenMalformed},
	{name: "header duplicate kid", header: `{"alg":"ES256","kid":"other","kid":"hard"}`, claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp}}`, wantErr: verify.ErrTokenMalformed},
	{name: "header duplicate crit", header: `{"alg":"ES256","kid":"hard","crit":[],"crit":[]}`, claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp}}`, wantErr: verify.ErrTokenMalformed},
	{name: "header ALG is not alg", header: `{"ALG":"ES256","kid":"hard"}`, claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp}}`, wantErr: verify.ErrTokenMalformed},
	{name: "header CRIT is not crit", header: `{"alg":"ES256","kid":"hard","CRIT":["x"]}`, claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp}}`},
	// Strict JSON text.
	{name: "invalid UTF-8 in a claim", claims: "{\"iss\":\"{iss}\",\"aud\":\"{aud}\",\"exp\":{exp},\"name\":\"\xff\"}", wantErr: verify.ErrTokenMalformed},
	{name: "lone surrogate escape", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"name":"\ud800"}`, wantErr: verify.ErrTokenMalformed},
	{name: "trailing data", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp}} {}`, wantErr: verify.ErrTokenMalformed},
	// Finding 4: scopes.
	{name: "issue: NBSP does not separate scopes", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scope":"foo\u00a0mcp:read"}`, wantErr: verify.ErrTokenMalformed},
	{name: "issue: EM SPACE", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scope":"foo\u2003mcp:read"}`, wantErr: verify.ErrTokenMalformed},
	{name: "issue: NEL", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scope":"foo\u0085mcp:read"}`, wantErr: verify.ErrTokenMalformed},
	{name: "issue: tab", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scope":"foo\tmcp:read"}`, wantErr: verify.ErrTokenMalformed},
	{name: "issue: newline", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scope":"foo\nmcp:read"}`, wantErr: verify.ErrTokenMalformed},
	{name: "carriage return", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scope":"foo\rmcp:read"}`, wantErr: verify.ErrTokenMalformed},
	{name: "vertical tab", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scope":"foo\u000bmcp:read"}`, wantErr: verify.ErrTokenMalformed},
	{name: "ideographic space", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scope":"foo\u3000mcp:read"}`, wantErr: verify.ErrTokenMalformed},
	{name: "line separator", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scope":"foo\u2028mcp:read"}`, wantErr: verify.ErrTokenMalformed},
	{name: "double quote in a scope", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scope":"mcp:read a\"b"}`, wantErr: verify.ErrTokenMalformed},
	{name: "backslash in a scope", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scope":"mcp:read a\\b"}`, wantErr: verify.ErrTokenMalformed},
	{name: "non-ASCII scope", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scope":"mcp:réad"}`, wantErr: verify.ErrTokenMalformed},
	{name: "DEL in a scope", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scope":"mcp:read\u007f"}`, wantErr: verify.ErrTokenMalformed},
	{name: "spaces only separate", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scope":" mcp:read  mcp:write "}`, wantScopes: []string{"mcp:read", "mcp:write"}},
	{name: "every scope-token character", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scope":"!#$%&'()*+,-./0123456789:;<=>?@AZ[]^_` + "`" + `az{|}~"}`, wantScopes: []string{"!#$%&'()*+,-./0123456789:;<=>?@AZ[]^_`az{|}~"}},
	{name: "issue: scp element with a space is malformed, never split", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scp":["foo mcp:read"]}`, wantErr: verify.ErrTokenMalformed},
	{name: "scp element empty", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scp":["mcp:read",""]}`, wantErr: verify.ErrTokenMalformed},
	{name: "scp element with NBSP", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scp":["foo\u00a0mcp:read"]}`, wantErr: verify.ErrTokenMalformed},
	{name: "scp string split on spaces", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scp":"mcp:read mcp:write"}`, wantScopes: []string{"mcp:read", "mcp:write"}},
	{name: "scope array element with a space", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"scope":["mcp:read x"]}`, wantErr: verify.ErrTokenMalformed},
	{name: "custom scope claim element with a space", scopeClaim: "roles", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"roles":["Global Admin"]}`, wantErr: verify.ErrTokenMalformed},
	{name: "custom scope claim with a tab", scopeClaim: "roles", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"roles":"a\tb"}`, wantErr: verify.ErrTokenMalformed},
	{name: "custom scope claim ROLES is not roles", scopeClaim: "roles", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"ROLES":["admin"],"roles":["reader"]}`, wantScopes: []string{"reader"}},
	{name: "custom scope claim duplicated", scopeClaim: "roles", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"roles":["reader"],"roles":["admin"]}`, wantErr: verify.ErrTokenMalformed},
	// Finding 5: identity values that cannot be header values.
	{name: "issue: sub over 8 KiB", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"sub":"` + strings.Repeat("a", 8193) + `"}`, wantErr: verify.ErrTokenMalformed},
	{name: "sub of exactly 8 KiB", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"sub":"` + strings.Repeat("a", 8192) + `"}`, wantSub: strings.Repeat("a", 8192)},
	{name: "issue: sub with CR LF", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"sub":"alice\r\nx-auth-sub: admin"}`, wantErr: verify.ErrTokenMalformed},
	{name: "issue: sub with LF", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"sub":"alice\nadmin"}`, wantErr: verify.ErrTokenMalformed},
	{name: "sub with CR", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"sub":"alice\r"}`, wantErr: verify.ErrTokenMalformed},
	{name: "sub with NUL", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"sub":"alice\u0000"}`, wantErr: verify.ErrTokenMalformed},
	{name: "sub with ESC", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"sub":"\u001b[31malice"}`, wantErr: verify.ErrTokenMalformed},
	{name: "sub with DEL", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"sub":"alice\u007f"}`, wantErr: verify.ErrTokenMalformed},
	{name: "sub with a leading space", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"sub":" admin"}`, wantErr: verify.ErrTokenMalformed},
	{name: "sub with a trailing tab", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"sub":"admin\t"}`, wantErr: verify.ErrTokenMalformed},
	{name: "sub with an inner tab and space", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"sub":"al\tice smith"}`, wantSub: "al\tice smith"},
	{name: "sub with UTF-8", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"sub":"zoë"}`, wantSub: "zoë"},
	{name: "client_id with LF", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"client_id":"app\nx"}`, wantErr: verify.ErrTokenMalformed},
	{name: "azp with CR", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"azp":"app\rx"}`, wantErr: verify.ErrTokenMalformed},
	{name: "azp over 8 KiB beside a good client_id", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"client_id":"app","azp":"` + strings.Repeat("b", 8193) + `"}`, wantErr: verify.ErrTokenMalformed},
	{name: "client_id falls back to azp", claims: `{"iss":"{iss}","aud":"{aud}","exp":{exp},"azp":"app"}`, wantClient: "app"},
}

// claimExamples and headerExamples are the JSON texts of hardeningRows, for
// the json/v2 differential corpus.
var claimExamples, headerExamples = func() (c, h []string) {
	for _, r := range hardeningRows {
		c = append(c, expandClaims(r.claims))
		if r.header != "" {
			h = append(h, r.header)
		}
	}
	return c, h
}()

// TestHardeningJWTClaims: one row per example of findings 3 to 5 (and the
// variants found while fixing them), each a correctly signed token judged
// by a JWT verifier.
func TestHardeningJWTClaims(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, "ES256", "hard")
	jwks := jwksOf(t, k)
	for _, tc := range hardeningRows {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			header := tc.header
			if header == "" {
				header = okHeader
			}
			raw := signRawJSON(t, k, header, expandClaims(tc.claims))
			v := newVerifier(t, verify.JWTOptions{Keys: verify.LocalJWKS(jwks), ScopeClaim: tc.scopeClaim})
			id, err := check(v, raw)
			requireCode(t, tc.wantErr, err)
			if tc.wantErr != nil {
				require.Nil(t, id)
				return
			}
			require.Equal(t, tc.wantSub, id.Subject, "sub")
			require.Equal(t, tc.wantClient, id.ClientID, "client id")
			if tc.wantScopes == nil {
				require.Empty(t, id.Scopes, "scopes")
			} else {
				require.Equal(t, tc.wantScopes, id.Scopes, "scopes")
			}
		})
	}
}

// TestHardeningIntrospection: the same rules for introspection answers.
// Identity values and scope-tokens make the token malformed (401); a
// duplicate member name makes the answer unreadable (503, like any broken
// answer); exact names apply.
func TestHardeningIntrospection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		body       string
		wantErr    error
		wantSub    string
		wantScopes []string
	}{
		{name: "plain", body: `{"active":true,"sub":"alice","scope":"mcp:read"}`, wantSub: "alice", wantScopes: []string{"mcp:read"}},
		{name: "SUB is not sub", body: `{"active":true,"sub":"alice","SUB":"admin"}`, wantSub: "alice"},
		{name: "ACTIVE is not active", body: `{"ACTIVE":true,"sub":"alice"}`, wantErr: verify.ErrTokenInactive},
		{name: "ſcope is not scope", body: `{"active":true,"ſcope":"mcp:read"}`},
		{name: "duplicate active", body: `{"active":false,"active":true}`, wantErr: verify.ErrIntrospectionUnavailable},
		{name: "duplicate sub", body: `{"active":true,"sub":"alice","sub":"admin"}`, wantErr: verify.ErrIntrospectionUnavailable},
		{name: "NBSP in scope", body: `{"active":true,"scope":"foo\u00a0mcp:read"}`, wantErr: verify.ErrTokenMalformed},
		{name: "tab in scope", body: `{"active":true,"scope":"foo\tmcp:read"}`, wantErr: verify.ErrTokenMalformed},
		{name: "scope array element with a space", body: `{"active":true,"scope":["foo mcp:read"]}`, wantErr: verify.ErrTokenMalformed},
		{name: "sub with CR LF", body: `{"active":true,"sub":"alice\r\nx"}`, wantErr: verify.ErrTokenMalformed},
		{name: "sub over 8 KiB", body: `{"active":true,"sub":"` + strings.Repeat("a", 8193) + `"}`, wantErr: verify.ErrTokenMalformed},
		{name: "client_id with LF", body: `{"active":true,"client_id":"a\nb"}`, wantErr: verify.ErrTokenMalformed},
		{name: "iss with LF", body: `{"active":true,"iss":"https://idp\n"}`, wantErr: verify.ErrTokenMalformed},
		{name: "inactive wins over a bad sub", body: `{"active":false,"sub":"a\nb"}`, wantErr: verify.ErrTokenInactive},
		{name: "sub of the wrong type", body: `{"active":true,"sub":1}`, wantErr: verify.ErrIntrospectionUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newIntro(t, newIntroIdP(t, http.StatusOK, tc.body), nil)
			id, err := v.Verify(context.Background(), verify.ParseToken("opaque-token"), []string{testAudience})
			requireCode(t, tc.wantErr, err)
			if tc.wantErr != nil {
				return
			}
			require.Equal(t, tc.wantSub, id.Subject)
			if tc.wantScopes == nil {
				require.Empty(t, id.Scopes)
			} else {
				require.Equal(t, tc.wantScopes, id.Scopes)
			}
		})
	}
}

// TestHardeningStatic: a static token's identity is configuration, checked
// when the verifier is built.
func TestHardeningStatic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		id      verify.StaticIdentity
		wantErr string
	}{
		{name: "good", id: verify.StaticIdentity{Subject: "alice", Scopes: []string{"mcp:read"}}},
		{name: "scope with a space", id: verify.StaticIdentity{Subject: "alice", Scopes: []string{"mcp:read mcp:write"}}, wantErr: "tokens: scope"},
		{name: "empty scope", id: verify.StaticIdentity{Subject: "alice", Scopes: []string{""}}, wantErr: "tokens: scope"},
		{name: "scope with NBSP", id: verify.StaticIdentity{Subject: "alice", Scopes: []string{"a\u00a0b"}}, wantErr: "tokens: scope"},
		{name: "sub with LF", id: verify.StaticIdentity{Subject: "alice\nadmin"}, wantErr: "tokens: a sub"},
		{name: "sub over 8 KiB", id: verify.StaticIdentity{Subject: strings.Repeat("a", 8193)}, wantErr: "tokens: a sub"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := verify.NewStatic("dev", map[string]verify.StaticIdentity{"dev-token": tc.id})
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
			require.NotContains(t, err.Error(), "dev-token")
		})
	}
}

// TestParseScopes: 0x20 is the only separator, and every token is a
// scope-token.
func TestParseScopes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", []string{}, true},
		{" ", []string{}, true},
		{"a", []string{"a"}, true},
		{"a b", []string{"a", "b"}, true},
		{"  a   b  ", []string{"a", "b"}, true},
		{"a\tb", nil, false},
		{"a\u00a0b", nil, false},
		{"a\u2003b", nil, false},
		{"a\u0085b", nil, false},
		{"a\nb", nil, false},
		{"a\"b", nil, false},
		{"a\\b", nil, false},
		{"a\x7fb", nil, false},
		{"a\x00b", nil, false},
		{"é", nil, false},
	}
	for _, tc := range tests {
		got, err := verify.ParseScopes(tc.in)
		if !tc.ok {
			require.Errorf(t, err, "%q", tc.in)
			continue
		}
		require.NoErrorf(t, err, "%q", tc.in)
		require.Equalf(t, tc.want, got, "%q", tc.in)
	}
}

// TestHeaderSafe: the identity value rule.
func TestHeaderSafe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"", true}, {"alice", true}, {"a\tb", true}, {"a b", true}, {"zoë", true},
		{strings.Repeat("a", verify.MaxHeaderValue), true},
		{strings.Repeat("a", verify.MaxHeaderValue+1), false},
		{"a\rb", false}, {"a\nb", false}, {"a\x00b", false}, {"a\x1bb", false}, {"a\x7fb", false},
		{" a", false}, {"a ", false}, {"\ta", false}, {"a\t", false},
	} {
		require.Equalf(t, tc.ok, verify.HeaderSafe(tc.in), "%q", tc.in)
	}
}
