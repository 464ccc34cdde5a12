package verify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/verify"
)

// The fixed world every test verifies in.
const (
	testIssuer   = "https://issuer.test"
	testAudience = "api://mcp"
)

// testNow is the injected clock's reading.
var testNow = time.Unix(1_800_000_000, 0)

func fixedClock() time.Time { return testNow }

// quietLogger drops the verifier's fetch-failure warnings.
var quietLogger = slog.New(slog.DiscardHandler)

// testKey is a signing key with the algorithm and kid tokens name.
type testKey struct {
	alg  string
	kid  string
	priv any // crypto private key, or []byte for HMAC
	pub  any // crypto public key, or []byte for HMAC
}

var (
	keyCacheMu sync.Mutex
	keyCache   = map[string][2]any{}
)

// newTestKey returns a real key for alg whose kid is name. Key material is
// generated once per (key family, name) per test binary, RSA generation
// being slow under -race: RS256 and PS256 keys of one name share it.
func newTestKey(t testing.TB, alg, name string) *testKey {
	t.Helper()
	family := alg
	if strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS") {
		family = "RSA"
	}
	keyCacheMu.Lock()
	defer keyCacheMu.Unlock()
	id := family + "/" + name
	if pair, ok := keyCache[id]; ok {
		return &testKey{alg: alg, kid: name, priv: pair[0], pub: pair[1]}
	}
	k := &testKey{alg: alg, kid: name}
	var err error
	switch family {
	case "RSA":
		var p *rsa.PrivateKey
		p, err = rsa.GenerateKey(rand.Reader, 2048)
		if err == nil {
			k.priv, k.pub = p, &p.PublicKey
		}
	case "ES256", "ES384", "ES512":
		curve := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		var p *ecdsa.PrivateKey
		p, err = ecdsa.GenerateKey(curve, rand.Reader)
		if err == nil {
			k.priv, k.pub = p, &p.PublicKey
		}
	case "EdDSA":
		var pub ed25519.PublicKey
		var p ed25519.PrivateKey
		pub, p, err = ed25519.GenerateKey(rand.Reader)
		k.priv, k.pub = p, pub
	case "HS256", "HS384", "HS512":
		secret := make([]byte, 64)
		_, err = rand.Read(secret)
		k.priv, k.pub = secret, secret
	default:
		t.Fatalf("newTestKey: unknown alg %q", alg)
	}
	require.NoError(t, err)
	keyCache[id] = [2]any{k.priv, k.pub}
	return k
}

// publicJWK is the key's public JWK with kid, alg and use=sig.
func (k *testKey) publicJWK(t testing.TB) jwk.Key {
	t.Helper()
	key, err := jwk.Import(k.pub)
	require.NoError(t, err)
	require.NoError(t, key.Set(jwk.KeyIDKey, k.kid))
	alg, ok := jwa.LookupSignatureAlgorithm(k.alg)
	require.True(t, ok)
	require.NoError(t, key.Set(jwk.AlgorithmKey, alg))
	require.NoError(t, key.Set(jwk.KeyUsageKey, "sig"))
	return key
}

// jwksOf is a JWKS document holding the keys' public halves.
func jwksOf(t testing.TB, keys ...*testKey) []byte {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		require.NoError(t, set.AddKey(k.publicJWK(t)))
	}
	b, err := json.Marshal(set)
	require.NoError(t, err)
	return b
}

// publicDER is the key's PKIX public key encoding.
func (k *testKey) publicDER(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.pub)
	require.NoError(t, err)
	return der
}

// publicPEM is the key's "PUBLIC KEY" PEM block.
func (k *testKey) publicPEM(t testing.TB) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: k.publicDER(t)})
}

// selfSignedCertDER is a certificate for the key, as an attacker would put
// in an x5c header.
func (k *testKey) selfSignedCertDER(t testing.TB) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    testNow.Add(-time.Hour),
		NotAfter:     testNow.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.pub, k.priv)
	require.NoError(t, err)
	return der
}

// claims returns valid claims for the test world, changed by over: a nil
// value removes the claim.
func claims(over map[string]any) map[string]any {
	c := map[string]any{
		"iss":   testIssuer,
		"sub":   "alice",
		"aud":   testAudience,
		"exp":   testNow.Add(time.Hour).Unix(),
		"iat":   testNow.Add(-time.Minute).Unix(),
		"scope": "mcp:read mcp:write",
	}
	return merge(c, over)
}

// header returns the protected header a key's token carries, changed by
// over: a nil value removes the parameter.
func (k *testKey) header(over map[string]any) map[string]any {
	h := map[string]any{"alg": k.alg, "kid": k.kid, "typ": "JWT"}
	return merge(h, over)
}

func merge(base, over map[string]any) map[string]any {
	for name, v := range over {
		if v == nil {
			delete(base, name)
			continue
		}
		base[name] = v
	}
	return base
}

// mint signs claims with the key under its default header changed by hdr.
func (k *testKey) mint(t testing.TB, hdr, cl map[string]any) string {
	t.Helper()
	return signCompact(t, k.alg, k.priv, k.header(hdr), cl)
}

// signCompact builds a compact JWS with exactly the given header and
// claims, signed by jwx's signer for alg with key. Tests need headers that
// jwx's high-level API would not write (no typ, crit, jku, ...).
func signCompact(t testing.TB, alg string, key any, hdr, cl map[string]any) string {
	t.Helper()
	input := signingInput(t, hdr, cl)
	a, ok := jwa.LookupSignatureAlgorithm(alg)
	require.True(t, ok, alg)
	signer, err := jws.SignerFor(a)
	require.NoError(t, err)
	sig, err := signer.Sign(key, []byte(input))
	require.NoError(t, err)
	return input + "." + b64(sig)
}

// signingInput is base64url(header) "." base64url(claims).
func signingInput(t testing.TB, hdr, cl map[string]any) string {
	t.Helper()
	h, err := json.Marshal(hdr)
	require.NoError(t, err)
	p, err := json.Marshal(cl)
	require.NoError(t, err)
	return b64(h) + "." + b64(p)
}

// flipBits sets the lowest bit of the last base64url character. For a
// signature whose byte length is not a multiple of 3 that bit is padding:
// the result is another spelling of the same signature bytes.
func flipBits(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[last|1])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// newVerifier builds a JWT verifier from o, defaulting the name, the test
// world's issuer and clock, and a quiet logger. Audiences are left to o: by
// default the route's audiences passed to Verify apply.
func newVerifier(t testing.TB, o verify.JWTOptions) *verify.JWT {
	t.Helper()
	if o.Name == "" {
		o.Name = "test"
	}
	if o.Issuer == "" {
		o.Issuer = testIssuer
	}
	if o.Now == nil {
		o.Now = fixedClock
	}
	if o.Remote.Logger == nil {
		o.Remote.Logger = quietLogger
	}
	v, err := verify.NewJWT(o)
	require.NoError(t, err)
	return v
}

// check parses raw as the request path does and verifies it against the
// route audience testAudience.
func check(v verify.Verifier, raw string) (*verify.Identity, error) {
	return v.Verify(context.Background(), verify.ParseToken(raw), []string{testAudience})
}

// requireCode asserts err is (wraps) want, naming both codes on failure.
func requireCode(t testing.TB, want, err error) {
	t.Helper()
	if want == nil {
		require.NoError(t, err)
		return
	}
	require.Error(t, err)
	require.Truef(t, errors.Is(err, want), "got %q (%v), want %q", verify.Code(err), err, verify.Code(want))
}

// eventually polls cond every few milliseconds for at most 10 seconds. It
// only bounds waiting for background work; pass/fail never depends on how
// fast that work is.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// goroutinesIn counts the goroutines whose stack mentions fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			count++
		}
	}
	return count
}

// startVerifier runs v's background work until the test ends.
func startVerifier(t testing.TB, v verify.Verifier) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v.Start(ctx)
	return cancel
}
