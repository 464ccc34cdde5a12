package dpop

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/keys"
)

func strp(s string) *string { return &s }

// TestCheckAcceptsEachAlgorithm: a valid proof passes for every default
// algorithm, made with the keys package's minting helper.
func TestCheckAcceptsEachAlgorithm(t *testing.T) {
	for _, alg := range []string{"ES256", "ES384", "EdDSA", "RS256", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			c := newTestChecker(t, nil)
			key := keyFor(t, alg)
			proof, err := keys.MintDPoPProof(key, alg, "POST", testURL, testToken, "", testNow, "")
			require.NoError(t, err)
			require.NoError(t, c.Check(context.Background(), []string{proof}, testRequest(), jktOf(t, key)))
		})
	}
}

// TestCheckRules: each case breaks exactly one rule of a valid proof and
// must fail with that rule's error; the baseline passes.
func TestCheckRules(t *testing.T) {
	es := keyFor(t, "ES256")
	esJKT := jktOf(t, es)
	privJWK, err := jwk.Import(es)
	require.NoError(t, err)
	octJWK, err := jwk.Import([]byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, err)

	tests := []struct {
		name   string
		proofs func(testing.TB) []string
		req    func(*Request)
		jkt    string // default esJKT
		want   error
	}{
		{name: "baseline valid", want: nil},
		{name: "typ JWT", proofs: one(proofSpec{typ: strp("JWT")}), want: ErrProofType},
		{name: "typ missing", proofs: one(proofSpec{typ: strp("")}), want: ErrProofType},
		{name: "alg none", proofs: one(proofSpec{unsigned: true, jwk: mustPub(t, es)}), want: ErrProofAlgorithm},
		{name: "alg HS256 with oct jwk", proofs: one(proofSpec{alg: "HS256", key: []byte("0123456789abcdef0123456789abcdef"), jwk: octJWK}), want: ErrProofAlgorithm},
		{name: "alg HS256 with EC jwk", proofs: one(proofSpec{alg: "HS256", key: []byte("0123456789abcdef0123456789abcdef"), jwk: mustPub(t, es)}), want: ErrProofAlgorithm},
		{name: "alg ES512 not configured", proofs: one(proofSpec{alg: "ES512"}), jkt: jktOf(t, keyFor(t, "ES512")), want: ErrProofAlgorithm},
		{name: "jwk with private key", proofs: one(proofSpec{jwk: privJWK}), want: ErrProofKey},
		{name: "jwk missing", proofs: one(proofSpec{jwk: "omit"}), want: ErrProofKey},
		{name: "jwk is a different type than alg", proofs: one(proofSpec{jwk: mustPub(t, keyFor(t, "EdDSA"))}), jkt: jktOf(t, keyFor(t, "EdDSA")), want: ErrProofSignature},
		{name: "signed by another key", proofs: one(proofSpec{key: keyFor(t, "other"), jwk: mustPub(t, es)}), want: ErrProofSignature},
		{name: "payload tampered", proofs: one(proofSpec{tamper: true}), want: ErrProofSignature},
		{name: "htm GET for POST", proofs: one(proofSpec{claims: map[string]any{"htm": "GET"}}), want: ErrProofMethod},
		{name: "htm lower case", proofs: one(proofSpec{claims: map[string]any{"htm": "post"}}), want: ErrProofMethod},
		{name: "htm missing", proofs: one(proofSpec{claims: map[string]any{"htm": nil}}), want: ErrProofMethod},
		{name: "htu with query", proofs: one(proofSpec{claims: map[string]any{"htu": testURL + "?session=1"}}), want: ErrProofURI},
		{name: "htu with fragment", proofs: one(proofSpec{claims: map[string]any{"htu": testURL + "#f"}}), want: ErrProofURI},
		{name: "htu other host", proofs: one(proofSpec{claims: map[string]any{"htu": "https://evil.example.com/mcp"}}), want: ErrProofURI},
		{name: "htu other scheme", proofs: one(proofSpec{claims: map[string]any{"htu": "http://mcp.example.com/mcp"}}), want: ErrProofURI},
		{name: "htu other port", proofs: one(proofSpec{claims: map[string]any{"htu": "https://mcp.example.com:8443/mcp"}}), want: ErrProofURI},
		{name: "htu other path", proofs: one(proofSpec{claims: map[string]any{"htu": "https://mcp.example.com/admin"}}), want: ErrProofURI},
		{name: "htu missing", proofs: one(proofSpec{claims: map[string]any{"htu": nil}}), want: ErrProofURI},
		{name: "htu equivalent spelling", proofs: one(proofSpec{claims: map[string]any{"htu": "HTTPS://MCP.Example.COM:443/%6Dcp"}}), want: nil},
		{name: "iat stale", proofs: one(proofSpec{claims: map[string]any{"iat": testNow.Add(-DefaultMaxAge - testSkew - time.Second).Unix()}}), want: ErrProofExpired},
		{name: "iat at the old edge", proofs: one(proofSpec{claims: map[string]any{"iat": testNow.Add(-DefaultMaxAge - testSkew).Unix()}}), want: nil},
		{name: "iat future", proofs: one(proofSpec{claims: map[string]any{"iat": testNow.Add(testSkew + time.Second).Unix()}}), want: ErrProofIssuedInFuture},
		{name: "iat at the future edge", proofs: one(proofSpec{claims: map[string]any{"iat": testNow.Add(testSkew).Unix()}}), want: nil},
		{name: "iat missing", proofs: one(proofSpec{claims: map[string]any{"iat": nil}}), want: ErrProofMalformed},
		{name: "iat a string", proofs: one(proofSpec{claims: map[string]any{"iat": "now"}}), want: ErrProofMalformed},
		{name: "iat a quoted number", proofs: one(proofSpec{claims: map[string]any{"iat": "1800000000"}}), want: ErrProofMalformed},
		{name: "iat null", proofs: one(proofSpec{claims: map[string]any{"iat": json.RawMessage("null")}}), want: ErrProofMalformed},
		{name: "iat fractional", proofs: one(proofSpec{claims: map[string]any{"iat": float64(testNow.Unix()) + 0.5}}), want: nil},
		{name: "jti missing", proofs: one(proofSpec{claims: map[string]any{"jti": nil}}), want: ErrProofMalformed},
		{name: "ath missing", proofs: one(proofSpec{claims: map[string]any{"ath": nil}}), want: ErrProofTokenHash},
		{name: "ath of another token", proofs: one(proofSpec{claims: map[string]any{"ath": TokenHash("another")}}), want: ErrProofTokenHash},
		{name: "ath for another token in request", req: func(r *Request) { r.AccessToken = "another" }, want: ErrProofTokenHash},
		{name: "thumbprint mismatch", jkt: jktOf(t, keyFor(t, "other")), want: ErrProofKeyMismatch},
		{name: "two DPoP headers", proofs: func(testing.TB) []string { return []string{makeProof(t, proofSpec{}), makeProof(t, proofSpec{})} }, want: ErrProofCount},
		{name: "two proofs joined by Envoy", proofs: func(testing.TB) []string {
			return []string{makeProof(t, proofSpec{}) + "," + makeProof(t, proofSpec{})}
		}, want: ErrProofCount},
		{name: "no DPoP header", proofs: func(testing.TB) []string { return nil }, want: ErrProofMissing},
		{name: "empty DPoP header", proofs: func(testing.TB) []string { return []string{" "} }, want: ErrProofMissing},
		{name: "not a JWS", proofs: func(testing.TB) []string { return []string{"not.a.jws"} }, want: ErrProofMalformed},
		{name: "JSON serialization", proofs: func(testing.TB) []string { return []string{`{"payload":"e30"}`} }, want: ErrProofMalformed},
		{name: "oversized", proofs: func(testing.TB) []string { return []string{string(make([]byte, MaxProofSize+1))} }, want: ErrProofMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			one := makeProof(t, proofSpec{})
			proofs := []string{one}
			if tt.proofs != nil {
				proofs = tt.proofs(t)
			}
			req := testRequest()
			if tt.req != nil {
				tt.req(&req)
			}
			jkt := esJKT
			if tt.jkt != "" {
				jkt = tt.jkt
			}
			c := newTestChecker(t, nil)
			err := c.Check(context.Background(), proofs, req, jkt)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
			assert.ErrorIs(t, err, ErrInvalidProof)
			e := asError(t, err)
			assert.Equal(t, CodeInvalidProof, e.Code())
			assert.False(t, e.Unavailable())
			assert.Equal(t, tt.want.(*Error).Reason(), e.Reason())
		})
	}
}

// one returns a single proof built from s.
func one(s proofSpec) func(testing.TB) []string {
	return func(t testing.TB) []string { return []string{makeProof(t, s)} }
}

func mustPub(t testing.TB, priv any) jwk.Key {
	t.Helper()
	k, err := jwk.PublicKeyOf(priv)
	require.NoError(t, err)
	return k
}

// TestCheckReplay: the same proof is accepted once; a proof that failed a
// rule does not use up its jti.
func TestCheckReplay(t *testing.T) {
	c := newTestChecker(t, nil)
	key := keyFor(t, "ES256")
	jkt := jktOf(t, key)
	ctx := context.Background()

	bad := makeProof(t, proofSpec{claims: map[string]any{"jti": "j1", "htm": "GET"}})
	require.ErrorIs(t, c.Check(ctx, []string{bad}, testRequest(), jkt), ErrProofMethod)

	good := makeProof(t, proofSpec{claims: map[string]any{"jti": "j1"}})
	require.NoError(t, c.Check(ctx, []string{good}, testRequest(), jkt))
	err := c.Check(ctx, []string{good}, testRequest(), jkt)
	require.ErrorIs(t, err, ErrProofReplayed)
	assert.Equal(t, CodeInvalidProof, asError(t, err).Code())

	// Same jti under another key is another proof.
	other := keyFor(t, "other")
	p := makeProof(t, proofSpec{key: other, claims: map[string]any{"jti": "j1"}})
	require.NoError(t, c.Check(ctx, []string{p}, testRequest(), jktOf(t, other)))
}

// TestCheckNonce covers dpop.nonce: true.
func TestCheckNonce(t *testing.T) {
	now := testNow
	clock := func() time.Time { return now }
	nonces, err := NewNonces(nil, time.Minute, clock)
	require.NoError(t, err)
	foreign, err := NewNonces(nil, time.Minute, clock)
	require.NoError(t, err)
	old := func() string { // issued two intervals ago
		n, err := NewNonces(nonces.key, time.Minute, func() time.Time { return testNow.Add(-2 * time.Minute) })
		require.NoError(t, err)
		return n.Current()
	}()
	prev := func() string {
		n, err := NewNonces(nonces.key, time.Minute, func() time.Time { return testNow.Add(-time.Minute) })
		require.NoError(t, err)
		return n.Current()
	}()
	jkt := jktOf(t, keyFor(t, "ES256"))

	tests := []struct {
		name  string
		nonce any
		want  error
	}{
		{"current", nonces.Current(), nil},
		{"previous interval", prev, nil},
		{"missing", nil, ErrNonceMissing},
		{"stale", old, ErrNonceStale},
		{"wrong key", foreign.Current(), ErrNonceInvalid},
		{"garbage", "not-a-nonce", ErrNonceInvalid},
		{"not a string", 42, ErrProofMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestChecker(t, func(cfg *Config) { cfg.Nonces = nonces })
			p := makeProof(t, proofSpec{claims: map[string]any{"nonce": tt.nonce}})
			err := c.Check(context.Background(), []string{p}, testRequest(), jkt)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
			if errors.Is(tt.want, ErrUseNonce) {
				e := asError(t, err)
				assert.Equal(t, CodeUseNonce, e.Code())
				assert.Equal(t, nonces.Current(), NonceOf(err))
				assert.Equal(t, nonces.Current(), c.Nonce())
			}
		})
	}

	// Without nonces configured a nonce claim is ignored.
	c := newTestChecker(t, nil)
	p := makeProof(t, proofSpec{claims: map[string]any{"nonce": "whatever"}})
	require.NoError(t, c.Check(context.Background(), []string{p}, testRequest(), jkt))
	assert.Equal(t, "", c.Nonce())
}

// TestCheckStoreUnavailable: a proof whose jti cannot be recorded is never
// accepted; the error says "unavailable" (503), not "invalid".
func TestCheckStoreUnavailable(t *testing.T) {
	store, err := NewRedisStore(closedPortURL(t))
	require.NoError(t, err)
	defer store.Close()
	c := newTestChecker(t, func(cfg *Config) { cfg.Store = store })
	p := makeProof(t, proofSpec{})
	err = c.Check(context.Background(), []string{p}, testRequest(), jktOf(t, keyFor(t, "ES256")))
	require.ErrorIs(t, err, ErrReplayStoreUnavailable)
	require.ErrorIs(t, err, ErrReplayStoreDown)
	e := asError(t, err)
	assert.Equal(t, CodeReplayStoreUnavailable, e.Code())
	assert.True(t, e.Unavailable())
}

// TestNewCheckerConfig: only asymmetric algorithms can be configured.
func TestNewCheckerConfig(t *testing.T) {
	store := NewMemoryStore(16, nil)
	for _, bad := range [][]string{{"none"}, {"HS256"}, {"ES256", "HS512"}, {"XX1"}} {
		_, err := NewChecker(Config{Algorithms: bad, Store: store})
		assert.Error(t, err, "%v", bad)
	}
	_, err := NewChecker(Config{})
	assert.Error(t, err, "store required")
	_, err = NewChecker(Config{Store: store, MaxAge: -time.Second})
	assert.Error(t, err)

	c, err := NewChecker(Config{Store: store, Algorithms: []string{"PS256", "ES256", "PS256"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"PS256", "ES256"}, c.Algorithms())
	c, err = NewChecker(Config{Store: store})
	require.NoError(t, err)
	assert.Equal(t, DefaultAlgorithms, c.Algorithms())
	assert.Equal(t, DefaultMaxAge, c.ttl)
}

// TestTokenHash pins ath to the RFC 9449 section 7.1 example.
func TestTokenHash(t *testing.T) {
	assert.Equal(t, "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo", TokenHash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"))
}

// TestErrorMatching: reason sentinels match their class and nothing else.
func TestErrorMatching(t *testing.T) {
	assert.ErrorIs(t, ErrProofURI, ErrInvalidProof)
	assert.NotErrorIs(t, ErrProofURI, ErrProofMethod)
	assert.NotErrorIs(t, ErrProofURI, ErrUseNonce)
	assert.NotErrorIs(t, ErrInvalidProof, ErrProofURI)
	assert.ErrorIs(t, ErrReplayStoreFull, ErrReplayStoreUnavailable)
	assert.True(t, ErrReplayStoreFull.Unavailable())
	assert.Equal(t, "invalid_dpop_proof: htu", ErrProofURI.Error())
	assert.Equal(t, "use_dpop_nonce", ErrUseNonce.Error())
	assert.Equal(t, "", NonceOf(ErrProofURI))
	b, _ := json.Marshal(ErrProofURI.Code())
	assert.Equal(t, `"invalid_dpop_proof"`, string(b))
}

// TestCheckKeyCache: a cached header and key still has every signature checked, and
// the cache stays bounded.
func TestCheckKeyCache(t *testing.T) {
	c := newTestChecker(t, nil)
	es := keyFor(t, "ES256")
	jkt := jktOf(t, es)
	ctx := context.Background()
	require.NoError(t, c.Check(ctx, []string{makeProof(t, proofSpec{})}, testRequest(), jkt))
	require.EqualValues(t, 1, c.heads.n.Load(), "header cached after a valid proof")

	forged := makeProof(t, proofSpec{key: keyFor(t, "other"), jwk: mustPub(t, es)})
	require.ErrorIs(t, c.Check(ctx, []string{forged}, testRequest(), jkt), ErrProofSignature)
	require.NoError(t, c.Check(ctx, []string{makeProof(t, proofSpec{})}, testRequest(), jkt))
	require.EqualValues(t, 1, c.heads.n.Load(), "hit, no second entry")

	small := newHeadCache(2)
	for i := 0; i < 5; i++ {
		small.put(string(rune('a'+i)), proofHead{key: proofKey{jkt: "x"}})
	}
	n := 0
	small.store.Load().Range(func(any, any) bool { n++; return true })
	assert.LessOrEqual(t, n, 2)
}
