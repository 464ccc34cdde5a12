package verify_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/jose"
	"github.com/tokengate/tokengate/verify"
)

// TestVerifyAlgorithms: a valid token verifies for every supported
// algorithm, from each kind of key source, and the identity carries the
// token's claims.
func TestVerifyAlgorithms(t *testing.T) {
	t.Parallel()
	type source string
	const (
		fromJWKS source = "jwks"
		fromPEM  source = "pem"
		fromHMAC source = "hmac"
	)
	tests := []struct {
		alg     string
		sources []source
	}{
		{"RS256", []source{fromJWKS, fromPEM}},
		{"RS384", []source{fromJWKS, fromPEM}},
		{"RS512", []source{fromJWKS, fromPEM}},
		{"PS256", []source{fromJWKS, fromPEM}},
		{"PS384", []source{fromJWKS, fromPEM}},
		{"PS512", []source{fromJWKS, fromPEM}},
		{"ES256", []source{fromJWKS, fromPEM}},
		{"ES384", []source{fromJWKS, fromPEM}},
		{"ES512", []source{fromJWKS, fromPEM}},
		{"EdDSA", []source{fromJWKS, fromPEM}},
		{"HS256", []source{fromHMAC}},
		{"HS384", []source{fromHMAC}},
		{"HS512", []source{fromHMAC}},
	}
	for _, tc := range tests {
		for _, src := range tc.sources {
			t.Run(tc.alg+"/"+string(src), func(t *testing.T) {
				t.Parallel()
				k := newTestKey(t, tc.alg, "k1")
				o := verify.JWTOptions{Name: "idp"}
				switch src {
				case fromJWKS:
					o.Keys = verify.LocalJWKS(jwksOf(t, k))
				case fromPEM:
					o.Keys = verify.PublicKeys(k.publicPEM(t))
				case fromHMAC:
					o.Keys = verify.SharedSecret(k.pub.([]byte))
					o.Algorithms = []jose.Alg{jose.Alg(tc.alg)}
				}
				v := newVerifier(t, o)
				require.True(t, v.Ready(), "static keys are ready at once")
				require.Equal(t, verify.KindJWT, v.Kind())
				require.Equal(t, testIssuer, v.Issuer())
				require.Equal(t, "idp", v.Name())
				cl := claims(map[string]any{"client_id": "cli"})
				id, err := check(v, k.mint(t, nil, cl))
				require.NoError(t, err)
				require.Equal(t, "idp", id.Verifier)
				require.Equal(t, "alice", id.Subject)
				require.Equal(t, testIssuer, id.Issuer)
				require.Equal(t, "cli", id.ClientID)
				require.Equal(t, []string{"mcp:read", "mcp:write"}, id.Scopes)
				want, err := json.Marshal(cl)
				require.NoError(t, err)
				require.JSONEq(t, string(want), string(id.Payload))
			})
		}
	}
}

// TestVerifyType: typ absent, JWT and RFC 9068 at+jwt (any case, with or
// without "application/") are access tokens; any other typ is refused.
func TestVerifyType(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, "ES256", "k1")
	v := newVerifier(t, verify.JWTOptions{Keys: verify.LocalJWKS(jwksOf(t, k))})
	tests := []struct {
		name string
		typ  any // nil: no typ header
		want error
	}{
		{"absent", nil, nil},
		{"JWT", "JWT", nil},
		{"jwt lower case", "jwt", nil},
		{"at+jwt", "at+jwt", nil},
		{"AT+JWT upper case", "AT+JWT", nil},
		{"application/at+jwt", "application/at+jwt", nil},
		{"empty string", "", nil},
		{"id token type", "id_token+jwt", verify.ErrTokenMalformed},
		{"dpop proof", "dpop+jwt", verify.ErrTokenMalformed},
		{"logout token", "logout+jwt", verify.ErrTokenMalformed},
		{"JOSE", "JOSE", verify.ErrTokenMalformed},
		{"at+jwt with suffix", "at+jwt ", verify.ErrTokenMalformed},
		{"number", 1, verify.ErrTokenMalformed},
		{"array", []string{"JWT"}, verify.ErrTokenMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hdr := k.header(nil)
			delete(hdr, "typ")
			if tc.typ != nil {
				hdr["typ"] = tc.typ
			}
			_, err := check(v, signCompact(t, k.alg, k.priv, hdr, claims(nil)))
			requireCode(t, tc.want, err)
		})
	}
}

// TestVerifyTimeClaims: exp is required; exp, nbf and iat are judged with
// the clock skew, one second inside the tolerance passes and one second
// outside fails with the claim's own code.
func TestVerifyTimeClaims(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, "ES256", "k1")
	v := newVerifier(t, verify.JWTOptions{Keys: verify.LocalJWKS(jwksOf(t, k)), ClockSkew: 60 * time.Second})
	noSkew := newVerifier(t, verify.JWTOptions{Keys: verify.LocalJWKS(jwksOf(t, k))})
	at := func(d time.Duration) int64 { return testNow.Add(d).Unix() }
	tests := []struct {
		name   string
		claims map[string]any
		v      *verify.JWT
		want   error
	}{
		{"exp missing", map[string]any{"exp": nil}, v, verify.ErrTokenMalformed},
		{"exp null", map[string]any{"exp": json.RawMessage("null")}, v, verify.ErrTokenMalformed},
		{"exp a string", map[string]any{"exp": "1800003600"}, v, verify.ErrTokenMalformed},
		{"exp negative", map[string]any{"exp": -1}, v, verify.ErrTokenMalformed},
		{"exp in an hour", nil, v, nil},
		{"exp 59s ago, inside skew", map[string]any{"exp": at(-59 * time.Second)}, v, nil},
		{"exp 60s ago, at the skew", map[string]any{"exp": at(-60 * time.Second)}, v, verify.ErrTokenExpired},
		{"exp 61s ago, past skew", map[string]any{"exp": at(-61 * time.Second)}, v, verify.ErrTokenExpired},
		{"exp fractional inside skew", map[string]any{"exp": float64(at(-60*time.Second)) + 0.5}, v, nil},
		{"exp now without skew", map[string]any{"exp": at(0)}, noSkew, verify.ErrTokenExpired},
		{"exp now+1s without skew", map[string]any{"exp": at(time.Second)}, noSkew, nil},
		{"nbf 59s ahead, inside skew", map[string]any{"nbf": at(59 * time.Second)}, v, nil},
		{"nbf 60s ahead, at the skew", map[string]any{"nbf": at(60 * time.Second)}, v, nil},
		{"nbf 61s ahead, past skew", map[string]any{"nbf": at(61 * time.Second)}, v, verify.ErrTokenNotYetValid},
		{"nbf in the past", map[string]any{"nbf": at(-time.Hour)}, v, nil},
		{"nbf now+1s without skew", map[string]any{"nbf": at(time.Second)}, noSkew, verify.ErrTokenNotYetValid},
		{"iat 59s ahead, inside skew", map[string]any{"iat": at(59 * time.Second)}, v, nil},
		{"iat 61s ahead, past skew", map[string]any{"iat": at(61 * time.Second)}, v, verify.ErrIssuedInFuture},
		{"iat missing", map[string]any{"iat": nil}, v, nil},
		{"iat now+1s without skew", map[string]any{"iat": at(time.Second)}, noSkew, verify.ErrIssuedInFuture},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := check(tc.v, k.mint(t, nil, claims(tc.claims)))
			requireCode(t, tc.want, err)
		})
	}
}

// TestVerifyIssuer: iss must equal the verifier's issuer exactly.
func TestVerifyIssuer(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, "ES256", "k1")
	v := newVerifier(t, verify.JWTOptions{Keys: verify.LocalJWKS(jwksOf(t, k))})
	tests := []struct {
		name string
		iss  any
		want error
	}{
		{"exact", testIssuer, nil},
		{"other issuer", "https://evil.test", verify.ErrIssuerUntrusted},
		{"trailing slash", testIssuer + "/", verify.ErrIssuerUntrusted},
		{"different case", strings.ToUpper(testIssuer), verify.ErrIssuerUntrusted},
		{"empty", "", verify.ErrIssuerUntrusted},
		{"missing", nil, verify.ErrIssuerUntrusted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cl := claims(nil)
			delete(cl, "iss")
			if tc.iss != nil {
				cl["iss"] = tc.iss
			}
			_, err := check(v, k.mint(t, nil, cl))
			requireCode(t, tc.want, err)
		})
	}
}

// TestVerifyAudience: aud as a string or an array must contain one expected
// audience; the verifier's own audiences replace the route's.
func TestVerifyAudience(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, "ES256", "k1")
	routeOnly := newVerifier(t, verify.JWTOptions{Keys: verify.LocalJWKS(jwksOf(t, k))})
	own := newVerifier(t, verify.JWTOptions{Keys: verify.LocalJWKS(jwksOf(t, k)), Audiences: []string{"api://own", "api://other"}})
	route := []string{"https://mcp.example/mcp"}
	tests := []struct {
		name  string
		v     *verify.JWT
		route []string
		aud   any
		want  error
	}{
		{"string matches route", routeOnly, route, "https://mcp.example/mcp", nil},
		{"array contains route", routeOnly, route, []string{"x", "https://mcp.example/mcp"}, nil},
		{"string mismatch", routeOnly, route, "https://mcp.example/other", verify.ErrAudienceMismatch},
		{"array without route", routeOnly, route, []string{"x", "y"}, verify.ErrAudienceMismatch},
		{"empty array", routeOnly, route, []string{}, verify.ErrAudienceMismatch},
		{"missing", routeOnly, route, nil, verify.ErrAudienceMismatch},
		{"prefix is not a match", routeOnly, route, "https://mcp.example/mcp/extra", verify.ErrAudienceMismatch},
		{"no expected audience fails closed", routeOnly, nil, "anything", verify.ErrAudienceMismatch},
		{"verifier audience, string", own, route, "api://own", nil},
		{"verifier audience, second entry", own, route, []string{"api://other"}, nil},
		{"verifier audiences override the route's", own, route, "https://mcp.example/mcp", verify.ErrAudienceMismatch},
		{"verifier audiences without route", own, nil, "api://own", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cl := claims(nil)
			delete(cl, "aud")
			if tc.aud != nil {
				cl["aud"] = tc.aud
			}
			_, err := tc.v.Verify(context.Background(), verify.ParseToken(k.mint(t, nil, cl)), tc.route)
			requireCode(t, tc.want, err)
		})
	}
}

// TestVerifyScopes: "scope" (space-delimited) first, then "scp" (string or
// array); a custom scope_claim reads only that claim.
func TestVerifyScopes(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, "ES256", "k1")
	def := newVerifier(t, verify.JWTOptions{Keys: verify.LocalJWKS(jwksOf(t, k))})
	named := newVerifier(t, verify.JWTOptions{Keys: verify.LocalJWKS(jwksOf(t, k)), ScopeClaim: "scope"})
	custom := newVerifier(t, verify.JWTOptions{Keys: verify.LocalJWKS(jwksOf(t, k)), ScopeClaim: "permissions"})
	tests := []struct {
		name   string
		v      *verify.JWT
		claims map[string]any
		want   []string
		err    error
	}{
		{"scope string", def, map[string]any{"scope": "a b"}, []string{"a", "b"}, nil},
		{"scope with extra spaces", def, map[string]any{"scope": "  a   b "}, []string{"a", "b"}, nil},
		{"scp string fallback", def, map[string]any{"scope": nil, "scp": "a b"}, []string{"a", "b"}, nil},
		{"scp array fallback", def, map[string]any{"scope": nil, "scp": []string{"a", "b"}}, []string{"a", "b"}, nil},
		{"scope wins over scp", def, map[string]any{"scope": "a", "scp": []string{"b"}}, []string{"a"}, nil},
		{"no scope at all", def, map[string]any{"scope": nil}, nil, nil},
		{"scope_claim scope is the default", named, map[string]any{"scope": nil, "scp": "a"}, []string{"a"}, nil},
		{"custom claim array", custom, map[string]any{"permissions": []string{"p:1", "p:2"}}, []string{"p:1", "p:2"}, nil},
		{"custom claim string", custom, map[string]any{"permissions": "p:1 p:2"}, []string{"p:1", "p:2"}, nil},
		{"custom claim ignores scope", custom, map[string]any{"scope": "a b"}, nil, nil},
		{"custom claim of the wrong type", custom, map[string]any{"permissions": 7}, nil, verify.ErrTokenMalformed},
		{"scp of the wrong type", def, map[string]any{"scope": nil, "scp": 7}, nil, verify.ErrTokenMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, err := check(tc.v, k.mint(t, nil, claims(tc.claims)))
			requireCode(t, tc.err, err)
			if tc.err == nil {
				require.ElementsMatch(t, tc.want, id.Scopes)
			}
		})
	}
}

// TestVerifyClientID: client_id, falling back to azp.
func TestVerifyClientID(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, "ES256", "k1")
	v := newVerifier(t, verify.JWTOptions{Keys: verify.LocalJWKS(jwksOf(t, k))})
	tests := []struct {
		name   string
		claims map[string]any
		want   string
	}{
		{"client_id", map[string]any{"client_id": "c1"}, "c1"},
		{"azp fallback", map[string]any{"azp": "a1"}, "a1"},
		{"client_id wins", map[string]any{"client_id": "c1", "azp": "a1"}, "c1"},
		{"neither", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, err := check(v, k.mint(t, nil, claims(tc.claims)))
			require.NoError(t, err)
			require.Equal(t, tc.want, id.ClientID)
		})
	}
}

// TestNewJWTErrors: bad options are refused with the configuration key
// they are about.
func TestNewJWTErrors(t *testing.T) {
	t.Parallel()
	rsaKey := newTestKey(t, "RS256", "k1")
	ecKey := newTestKey(t, "ES256", "k1")
	secret := []byte(strings.Repeat("s", 64))
	tests := []struct {
		name   string
		o      verify.JWTOptions
		prefix string
	}{
		{"no issuer", verify.JWTOptions{Keys: verify.LocalJWKS(jwksOf(t, rsaKey))}, "issuer: "},
		{"no key source", verify.JWTOptions{Issuer: testIssuer}, "jwks_uri: "},
		{"none allowed", verify.JWTOptions{Issuer: testIssuer, Keys: verify.LocalJWKS(jwksOf(t, rsaKey)), Algorithms: []jose.Alg{"none"}}, "algorithms: "},
		{"unknown algorithm", verify.JWTOptions{Issuer: testIssuer, Keys: verify.LocalJWKS(jwksOf(t, rsaKey)), Algorithms: []jose.Alg{"RS1"}}, "algorithms: "},
		{"HMAC with a JWKS URI", verify.JWTOptions{Issuer: testIssuer, Keys: verify.RemoteJWKS("https://idp.test/jwks"), Algorithms: []jose.Alg{"HS256"}}, "algorithms: "},
		{"http JWKS URI", verify.JWTOptions{Issuer: testIssuer, Keys: verify.RemoteJWKS("http://idp.test/jwks")}, "jwks_uri: "},
		{"RSA with an HMAC secret", verify.JWTOptions{Issuer: testIssuer, Keys: verify.SharedSecret(secret), Algorithms: []jose.Alg{"RS256"}}, "algorithms: "},
		{"short HS256 secret", verify.JWTOptions{Issuer: testIssuer, Keys: verify.SharedSecret(secret[:31])}, "hmac_secret: "},
		{"short HS512 secret", verify.JWTOptions{Issuer: testIssuer, Keys: verify.SharedSecret(secret[:63]), Algorithms: []jose.Alg{"HS512"}}, "hmac_secret: "},
		{"JWKS without an allowed key", verify.JWTOptions{Issuer: testIssuer, Keys: verify.LocalJWKS(jwksOf(t, rsaKey)), Algorithms: []jose.Alg{"ES256"}}, "jwks_file: "},
		{"PEM key not fitting the allow-list", verify.JWTOptions{Issuer: testIssuer, Keys: verify.PublicKeys(ecKey.publicPEM(t)), Algorithms: []jose.Alg{"RS256"}}, "public_key: "},
		{"PEM garbage", verify.JWTOptions{Issuer: testIssuer, Keys: verify.PublicKeys([]byte("not a key"))}, "public_key: "},
		{"JWKS garbage", verify.JWTOptions{Issuer: testIssuer, Keys: verify.LocalJWKS([]byte("{"))}, "jwks_file: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := verify.NewJWT(tc.o)
			require.Nil(t, v)
			require.Error(t, err)
			require.Truef(t, strings.HasPrefix(err.Error(), tc.prefix), "error %q should start with %q", err, tc.prefix)
			var oe *verify.OptionError
			require.ErrorAs(t, err, &oe)
			require.Equal(t, strings.TrimSuffix(tc.prefix, ": "), oe.Key)
			for _, s := range []string{string(secret[:31]), "BEGIN"} {
				require.NotContains(t, err.Error(), s, "errors never echo key material")
			}
		})
	}
}

// TestVerifyAttacks is the attack catalogue: each forged, confused or
// damaged token is refused with its specific code, and no header ever makes
// the verifier fetch a key.
func TestVerifyAttacks(t *testing.T) {
	t.Parallel()
	trusted := newTestKey(t, "RS256", "trusted")
	attacker := newTestKey(t, "RS256", "attacker")
	// The attacker's key under the trusted kid.
	impostor := &testKey{alg: "RS256", kid: trusted.kid, priv: attacker.priv, pub: attacker.pub}
	ec384 := newTestKey(t, "ES384", "ec")
	ec256 := &testKey{alg: "ES256", kid: "ec", priv: newTestKey(t, "ES256", "ec").priv}

	// Where jku / x5u point, serving the attacker's keys: never called.
	keyServer := newJWKSServer(t, jwksOf(t, attacker, impostor))
	remote := newJWKSServer(t, jwksOf(t, trusted))

	jwksV := newVerifier(t, verify.JWTOptions{Keys: verify.LocalJWKS(jwksOf(t, trusted))})
	pemV := newVerifier(t, verify.JWTOptions{Keys: verify.PublicKeys(trusted.publicPEM(t))})
	remoteV := newVerifier(t, verify.JWTOptions{Keys: verify.RemoteJWKS(remote.URL), Remote: verify.RemoteOptions{MinRefetchInterval: time.Hour}})
	startVerifier(t, remoteV)
	eventually(t, "remote JWKS loaded", remoteV.Ready)
	rs256Only := newVerifier(t, verify.JWTOptions{Keys: verify.LocalJWKS(jwksOf(t, trusted)), Algorithms: []jose.Alg{"RS256"}})
	hsAndRSAllowed := newVerifier(t, verify.JWTOptions{Keys: verify.PublicKeys(trusted.publicPEM(t)), Algorithms: []jose.Alg{"RS256", "HS256"}})
	ec384V := newVerifier(t, verify.JWTOptions{Keys: verify.LocalJWKS(jwksOf(t, ec384))})
	ec384PEM := newVerifier(t, verify.JWTOptions{Keys: verify.PublicKeys(ec384.publicPEM(t))})
	hmacV := newVerifier(t, verify.JWTOptions{Keys: verify.SharedSecret(newTestKey(t, "HS256", "h").pub.([]byte))})
	rsaVerifiers := map[string]*verify.JWT{"jwks": jwksV, "pem": pemV, "remote": remoteV}

	valid := trusted.mint(t, nil, claims(nil))
	parts := strings.Split(valid, ".")
	require.Len(t, parts, 3)
	sig := parts[2]
	require.Len(t, sig, 342, "an RS256 signature is 256 bytes, 342 base64url characters")

	unsigned := func(hdr map[string]any) string { return signingInput(t, hdr, claims(nil)) + "." }
	asHMAC := func(secret []byte, kid any) string {
		hdr := merge(map[string]any{"alg": "HS256", "typ": "JWT"}, map[string]any{"kid": kid})
		return signCompact(t, "HS256", secret, hdr, claims(nil))
	}
	attackerJWK := func() map[string]any {
		b, err := json.Marshal(attacker.publicJWK(t))
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		return m
	}()
	tamperedClaims, err := json.Marshal(claims(map[string]any{"sub": "admin"}))
	require.NoError(t, err)

	tests := []struct {
		name  string
		token string
		on    []string // names in rsaVerifiers; empty: the extra verifier
		v     *verify.JWT
		want  error
	}{
		{name: "control: the valid token", token: valid, on: []string{"jwks", "pem", "remote"}},

		{name: "alg none, empty signature", token: unsigned(map[string]any{"alg": "none", "typ": "JWT"}), on: []string{"jwks", "pem", "remote"}, want: verify.ErrAlgorithmNotAllowed},
		{name: "alg none with trusted kid", token: unsigned(map[string]any{"alg": "none", "kid": "trusted"}), on: []string{"jwks", "pem", "remote"}, want: verify.ErrAlgorithmNotAllowed},
		{name: "alg None", token: unsigned(map[string]any{"alg": "None"}), on: []string{"jwks"}, want: verify.ErrAlgorithmNotAllowed},
		{name: "alg NONE", token: unsigned(map[string]any{"alg": "NONE"}), on: []string{"jwks"}, want: verify.ErrAlgorithmNotAllowed},
		{name: "alg none on an HMAC verifier", token: unsigned(map[string]any{"alg": "none"}), v: hmacV, want: verify.ErrAlgorithmNotAllowed},
		{name: "alg empty", token: unsigned(map[string]any{"alg": ""}), on: []string{"jwks"}, want: verify.ErrAlgorithmNotAllowed},

		{name: "HS256 keyed with the public key PEM, trusted kid", token: asHMAC(trusted.publicPEM(t), "trusted"), on: []string{"jwks", "pem", "remote"}, want: verify.ErrAlgorithmNotAllowed},
		{name: "HS256 keyed with the public key PEM, no kid", token: asHMAC(trusted.publicPEM(t), nil), on: []string{"jwks", "pem", "remote"}, want: verify.ErrAlgorithmNotAllowed},
		{name: "HS256 keyed with the public key PEM, unknown kid", token: asHMAC(trusted.publicPEM(t), "nope"), on: []string{"jwks", "pem", "remote"}, want: verify.ErrAlgorithmNotAllowed},
		{name: "HS256 keyed with the public key DER, trusted kid", token: asHMAC(trusted.publicDER(t), "trusted"), on: []string{"jwks", "pem", "remote"}, want: verify.ErrAlgorithmNotAllowed},
		{name: "HS256 keyed with the public key DER, no kid", token: asHMAC(trusted.publicDER(t), nil), on: []string{"jwks", "pem", "remote"}, want: verify.ErrAlgorithmNotAllowed},
		{name: "HS256 with the PEM, HS256 in the allow-list of an RSA verifier", token: asHMAC(trusted.publicPEM(t), nil), v: hsAndRSAllowed, want: verify.ErrAlgorithmNotAllowed},
		{name: "RS256 on an HMAC verifier", token: valid, v: hmacV, want: verify.ErrAlgorithmNotAllowed},

		{name: "untrusted key under the trusted kid", token: impostor.mint(t, nil, claims(nil)), on: []string{"jwks", "pem", "remote"}, want: verify.ErrSignatureInvalid},
		{name: "untrusted key, no kid", token: impostor.mint(t, map[string]any{"kid": nil}, claims(nil)), on: []string{"jwks", "pem", "remote"}, want: verify.ErrSignatureInvalid},
		{name: "embedded jwk, trusted kid", token: impostor.mint(t, map[string]any{"jwk": attackerJWK}, claims(nil)), on: []string{"jwks", "pem", "remote"}, want: verify.ErrSignatureInvalid},
		{name: "embedded jwk, no kid", token: impostor.mint(t, map[string]any{"jwk": attackerJWK, "kid": nil}, claims(nil)), on: []string{"jwks", "pem", "remote"}, want: verify.ErrSignatureInvalid},
		{name: "embedded x5c, trusted kid", token: impostor.mint(t, map[string]any{"x5c": []string{base64Std(attacker.selfSignedCertDER(t))}}, claims(nil)), on: []string{"jwks", "pem", "remote"}, want: verify.ErrSignatureInvalid},
		{name: "jku, trusted kid", token: impostor.mint(t, map[string]any{"jku": keyServer.URL + "/jwks.json"}, claims(nil)), on: []string{"jwks", "pem", "remote"}, want: verify.ErrSignatureInvalid},
		{name: "jku, attacker's kid", token: attacker.mint(t, map[string]any{"jku": keyServer.URL + "/jwks.json"}, claims(nil)), on: []string{"jwks", "remote"}, want: verify.ErrKeyUnknown},
		{name: "x5u, trusted kid", token: impostor.mint(t, map[string]any{"x5u": keyServer.URL + "/cert.pem"}, claims(nil)), on: []string{"jwks", "pem", "remote"}, want: verify.ErrSignatureInvalid},
		{name: "x5u, attacker's kid", token: attacker.mint(t, map[string]any{"x5u": keyServer.URL + "/cert.pem"}, claims(nil)), on: []string{"jwks", "remote"}, want: verify.ErrKeyUnknown},

		{name: "kid path traversal", token: trusted.mint(t, map[string]any{"kid": "../../etc/passwd"}, claims(nil)), on: []string{"jwks", "remote"}, want: verify.ErrKeyUnknown},
		{name: "kid SQL injection", token: trusted.mint(t, map[string]any{"kid": "' OR 1=1 --"}, claims(nil)), on: []string{"jwks", "remote"}, want: verify.ErrKeyUnknown},
		{name: "kid with NUL and newline", token: trusted.mint(t, map[string]any{"kid": "trusted\x00\n"}, claims(nil)), on: []string{"jwks", "remote"}, want: verify.ErrKeyUnknown},
		{name: "kid of 8 KiB", token: trusted.mint(t, map[string]any{"kid": strings.Repeat("k", 8<<10)}, claims(nil)), on: []string{"jwks", "remote"}, want: verify.ErrKeyUnknown},
		{name: "kid not a string", token: trusted.mint(t, map[string]any{"kid": 1}, claims(nil)), on: []string{"jwks", "pem", "remote"}, want: verify.ErrTokenMalformed},

		{name: "unknown crit", token: trusted.mint(t, map[string]any{"crit": []string{"exp"}, "exp": 1}, claims(nil)), on: []string{"jwks", "pem", "remote"}, want: verify.ErrTokenMalformed},
		{name: "empty crit", token: trusted.mint(t, map[string]any{"crit": []string{}}, claims(nil)), on: []string{"jwks"}, want: verify.ErrTokenMalformed},
		{name: "b64 false", token: trusted.mint(t, map[string]any{"crit": []string{"b64"}, "b64": false}, claims(nil)), on: []string{"jwks"}, want: verify.ErrTokenMalformed},

		{name: "tampered payload", token: parts[0] + "." + b64(tamperedClaims) + "." + sig, on: []string{"jwks", "pem", "remote"}, want: verify.ErrSignatureInvalid},
		{name: "tampered header", token: b64([]byte(`{"alg":"RS256","kid":"trusted","typ":"at+jwt"}`)) + "." + parts[1] + "." + sig, on: []string{"jwks", "pem", "remote"}, want: verify.ErrSignatureInvalid},
		{name: "signature of another token", token: parts[0] + "." + parts[1] + "." + strings.Split(trusted.mint(t, nil, claims(map[string]any{"sub": "bob"})), ".")[2], on: []string{"jwks"}, want: verify.ErrSignatureInvalid},

		// Truncation: while the signature segment stays valid base64url the
		// signature fails; a length no base64 has, or a lost segment, is
		// malformed.
		{name: "truncated: last signature character", token: valid[:len(valid)-1], on: []string{"jwks", "pem", "remote"}, want: verify.ErrTokenMalformed},
		{name: "truncated: last 2 signature characters", token: valid[:len(valid)-2], on: []string{"jwks", "pem", "remote"}, want: verify.ErrSignatureInvalid},
		{name: "truncated: signature emptied", token: parts[0] + "." + parts[1] + ".", on: []string{"jwks", "pem", "remote"}, want: verify.ErrSignatureInvalid},
		{name: "truncated: signature segment gone", token: parts[0] + "." + parts[1], on: []string{"jwks", "pem", "remote"}, want: verify.ErrTokenMalformed},
		{name: "truncated: mid-payload", token: valid[:len(parts[0])+1+len(parts[1])/2], on: []string{"jwks", "pem", "remote"}, want: verify.ErrTokenMalformed},
		{name: "truncated: header only", token: parts[0], on: []string{"jwks"}, want: verify.ErrTokenMalformed},

		// Other spellings of a valid signature never verify.
		{name: "signature padding bits set", token: parts[0] + "." + parts[1] + "." + flipBits(sig), on: []string{"jwks", "pem", "remote"}, want: verify.ErrTokenMalformed},
		{name: "signature padded with =", token: valid + "==", on: []string{"jwks", "pem", "remote"}, want: verify.ErrTokenMalformed},
		{name: "signature with a line break", token: parts[0] + "." + parts[1] + "." + sig[:100] + "\n" + sig[100:], on: []string{"jwks", "pem", "remote"}, want: verify.ErrTokenMalformed},

		{name: "PS256 outside an RS256 allow-list", token: (&testKey{alg: "PS256", kid: "trusted", priv: trusted.priv}).mint(t, nil, claims(nil)), v: rs256Only, want: verify.ErrAlgorithmNotAllowed},
		{name: "RS512 outside an RS256 allow-list", token: (&testKey{alg: "RS512", kid: "trusted", priv: trusted.priv}).mint(t, nil, claims(nil)), v: rs256Only, want: verify.ErrAlgorithmNotAllowed},
		{name: "unsupported alg ES256K", token: unsigned(map[string]any{"alg": "ES256K", "kid": "trusted"}) + "AAAA", on: []string{"jwks"}, want: verify.ErrAlgorithmNotAllowed},
		{name: "unknown alg", token: unsigned(map[string]any{"alg": "RS1", "kid": "trusted"}) + "AAAA", on: []string{"jwks"}, want: verify.ErrAlgorithmNotAllowed},
		{name: "ES256 token against an ES384 key (JWKS)", token: ec256.mint(t, nil, claims(nil)), v: ec384V, want: verify.ErrAlgorithmNotAllowed},
		{name: "ES256 token against an ES384 key (PEM)", token: ec256.mint(t, map[string]any{"kid": nil}, claims(nil)), v: ec384PEM, want: verify.ErrAlgorithmNotAllowed},
		{name: "ES384 control", token: ec384.mint(t, nil, claims(nil)), v: ec384V},
	}
	for _, tc := range tests {
		vs := map[string]*verify.JWT{}
		for _, name := range tc.on {
			vs[name] = rsaVerifiers[name]
		}
		if tc.v != nil {
			vs["extra"] = tc.v
		}
		require.NotEmpty(t, vs, tc.name)
		for vname, v := range vs {
			t.Run(tc.name+"/"+vname, func(t *testing.T) {
				id, err := check(v, tc.token)
				requireCode(t, tc.want, err)
				if tc.want != nil {
					require.Nil(t, id)
				}
			})
		}
	}
	require.Zero(t, keyServer.hits.Load(), "jku / x5u must never be fetched")
	// The configured Keys: verify.LocalJWKS(the load at start), then one early refetch for
	// the first unknown kid; later unknown kids are rate-limited.
	require.EqualValues(t, 2, remote.hits.Load())
}
