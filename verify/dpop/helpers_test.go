package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/keys"
)

// quietLogger drops go-redis's own log lines (dial failures the tests
// provoke on purpose); the errors still reach the tests.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietLogger{}) }

// testNow is the fixed clock of the checker tests.
var testNow = time.Unix(1_800_000_000, 0)

const (
	testToken = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2ln" // the access token the proofs carry
	testURL   = "https://mcp.example.com/mcp"
	testSkew  = 5 * time.Second
)

// Test keys, generated once per test binary.
var (
	keysOnce sync.Once
	testKeys map[string]any
)

// keyFor returns a private key for alg: ES256, ES384, EdDSA, RS256, PS256;
// "other" is a second ES256 key.
func keyFor(t testing.TB, alg string) any {
	t.Helper()
	keysOnce.Do(func() {
		ec256a, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ec256b, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		ec521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		rs, _ := rsa.GenerateKey(rand.Reader, 2048)
		testKeys = map[string]any{
			"ES256": ec256a, "other": ec256b, "ES384": ec384, "ES512": ec521,
			"EdDSA": ed, "RS256": rs, "PS256": rs,
		}
	})
	k, ok := testKeys[alg]
	require.True(t, ok, alg)
	return k
}

// jktOf returns the RFC 7638 thumbprint of priv's public key.
func jktOf(t testing.TB, priv any) string {
	t.Helper()
	tp, err := keys.Thumbprint(priv)
	require.NoError(t, err)
	return tp
}

// proofSpec describes a proof to build; zero fields take valid defaults.
type proofSpec struct {
	alg      string         // header alg; default ES256
	key      any            // signing key; default keyFor(alg)
	typ      *string        // typ header; nil: dpop+jwt
	jwk      any            // jwk header: nil: public key of key; "omit": none; else set as is
	claims   map[string]any // replaces/sets claims; a nil value deletes the claim
	tamper   bool           // flip the payload after signing
	unsigned bool           // alg none: header.payload.
}

// validClaims are the claims of a proof that passes against testRequest.
func validClaims() map[string]any {
	return map[string]any{
		"jti": rand.Text(),
		"htm": "POST",
		"htu": testURL,
		"iat": testNow.Unix(),
		"ath": TokenHash(testToken),
	}
}

// testRequest is the request the valid proof is made for.
func testRequest() Request {
	return Request{Method: "POST", URL: testURL + "?session=1", AccessToken: testToken}
}

// makeProof builds and signs a proof per s with jwx (or leaves it unsigned
// for alg none).
func makeProof(t testing.TB, s proofSpec) string {
	t.Helper()
	if s.alg == "" {
		s.alg = "ES256"
	}
	if s.key == nil && !s.unsigned {
		s.key = keyFor(t, s.alg)
	}
	claims := validClaims()
	for k, v := range s.claims {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	payload, err := json.Marshal(claims)
	require.NoError(t, err)

	typ := ProofType
	if s.typ != nil {
		typ = *s.typ
	}
	hdr := jws.NewHeaders()
	if typ != "" {
		require.NoError(t, hdr.Set(jws.TypeKey, typ))
	}
	switch j := s.jwk.(type) {
	case nil:
		pub, err := jwk.PublicKeyOf(s.key)
		require.NoError(t, err)
		require.NoError(t, hdr.Set(jws.JWKKey, pub))
	case string:
		require.Equal(t, "omit", j)
	default:
		require.NoError(t, hdr.Set(jws.JWKKey, j))
	}
	if s.unsigned {
		require.NoError(t, hdr.Set(jws.AlgorithmKey, jwa.NoSignature()))
		h, err := json.Marshal(hdr)
		require.NoError(t, err)
		return b64(h) + "." + b64(payload) + "."
	}
	alg, ok := jwa.LookupSignatureAlgorithm(s.alg)
	require.True(t, ok, s.alg)
	signed, err := jws.Sign(payload, jws.WithKey(alg, s.key, jws.WithProtectedHeaders(hdr)))
	require.NoError(t, err)
	out := string(signed)
	if s.tamper {
		c := claims
		c["htm"] = "POST"
		c["extra"] = "x"
		p, _ := json.Marshal(c)
		parts := splitDots(out)
		out = parts[0] + "." + b64(p) + "." + parts[2]
	}
	return out
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func splitDots(s string) [3]string {
	var out [3]string
	i := 0
	for j := 0; j < len(s); j++ {
		if s[j] == '.' && i < 2 {
			i++
			continue
		}
		out[i] += string(s[j])
	}
	return out
}

// newTestChecker returns a checker on testNow with a fresh memory store.
func newTestChecker(t testing.TB, mod func(*Config)) *Checker {
	t.Helper()
	cfg := Config{
		MaxAge:    DefaultMaxAge,
		ClockSkew: testSkew,
		Store:     NewMemoryStore(1024, func() time.Time { return testNow }),
		Now:       func() time.Time { return testNow },
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := NewChecker(cfg)
	require.NoError(t, err)
	return c
}

// startRedis runs a real redis-server on a free loopback port for the test
// and returns its URL and a function that kills it early. It skips when
// redis-server is missing, except under CI=true where that fails.
func startRedis(t testing.TB) (url string, kill func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not installed (run make redis): %v", err)
		}
		t.Skip("redis-server not installed (make redis installs it)")
	}
	port := freePort(t)
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "yes")
	require.NoError(t, cmd.Start())
	var once sync.Once
	kill = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(kill)
	url = "redis://127.0.0.1:" + strconv.Itoa(port) + "/0"
	s, err := NewRedisStore(url)
	require.NoError(t, err)
	defer s.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := s.Ping(ctx)
		cancel()
		if err == nil {
			return url, kill
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not answer on port %d: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort asks the kernel for a free loopback port.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// closedPortURL is a redis URL nothing listens on.
func closedPortURL(t testing.TB) string {
	return "redis://127.0.0.1:" + strconv.Itoa(freePort(t)) + "/0"
}

// asError returns err's *Error or fails.
func asError(t testing.TB, err error) *Error {
	t.Helper()
	var e *Error
	require.True(t, errors.As(err, &e), "%v is not a *dpop.Error", err)
	return e
}
