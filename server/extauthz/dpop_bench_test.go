package extauthz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/stretchr/testify/require"

	"github.com/tokengate/tokengate/authz"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/keys"
)

// dpopBench is a service with one route and a DPoP-bound ES256 token
// (issue 14's benchmark): the token is cached after the first Check, and
// every request carries a fresh proof.
func dpopBench(b *testing.B, bearer bool) (*Service, []*authv3.CheckRequest) {
	b.Helper()
	dir := b.TempDir()
	for _, name := range []string{"idp", "client"} {
		_, err := keys.Generate("ES256", name, filepath.Join(dir, name))
		require.NoError(b, err)
	}
	path := filepath.Join(dir, "tokengate.yaml")
	require.NoError(b, os.WriteFile(path, []byte(`
verifiers:
  idp: {type: jwt, issuer: https://idp.example, public_key_file: `+filepath.Join(dir, "idp", keys.PublicKeyFile)+`}
routes:
  - {name: mcp, match: {path_prefix: /mcp}, verifiers: [idp], resource: https://mcp.example.com/mcp}
`), 0o600))
	cfg, err := config.Load(path, nil)
	require.NoError(b, err)
	now := time.Now()
	p, err := authz.Build(cfg, authz.BuildOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }})
	require.NoError(b, err)
	jkt, err := keys.KeyThumbprintFile(filepath.Join(dir, "client", keys.PrivateKeyFile))
	require.NoError(b, err)
	key, err := keys.LoadPrivateKey(filepath.Join(dir, "client", keys.PrivateKeyFile))
	require.NoError(b, err)
	tok, err := keys.Mint(keys.MintOptions{
		KeyFile: filepath.Join(dir, "idp", keys.PrivateKeyFile), Alg: "ES256", Kid: "idp", Issuer: "https://idp.example",
		Audience: []string{"https://mcp.example.com/mcp"}, Subject: "alice", Now: now, TTL: time.Hour,
		CnfJKT: map[bool]string{true: "", false: jkt}[bearer],
	})
	require.NoError(b, err)
	reqs := make([]*authv3.CheckRequest, b.N+1)
	for i := range reqs {
		h := map[string]string{"authorization": "Bearer " + tok}
		if !bearer {
			proof, err := keys.MintDPoPProof(key, "ES256", "POST", "https://mcp.example.com/mcp", tok, "", now, "")
			require.NoError(b, err)
			h = map[string]string{"authorization": "DPoP " + tok, "dpop": proof}
		}
		r := checkRequest("POST", "mcp.example.com", "/mcp", h)
		r.Attributes.Request.Http.Scheme = "https"
		reqs[i] = r
	}
	return newService(p, slog.New(slog.NewTextHandler(io.Discard, nil)), nil), reqs
}

func benchDPoP(b *testing.B, bearer bool) {
	svc, reqs := dpopBench(b, bearer)
	if resp, _ := svc.Check(context.Background(), reqs[len(reqs)-1]); resp.GetOkResponse() == nil {
		b.Fatalf("the setup's request is not allowed: %v", resp.GetDeniedResponse())
	}
	b.ReportAllocs()
	start := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if resp, _ := svc.Check(context.Background(), reqs[i]); resp.GetOkResponse() == nil {
			b.Fatal("denied")
		}
	}
	b.StopTimer()
	reportCPU(b, start)
}

// BenchmarkCheckHotDPoP: the token cached, a fresh ES256 proof per Check,
// the in-memory replay store.
func BenchmarkCheckHotDPoP(b *testing.B) { benchDPoP(b, false) }

// BenchmarkCheckHotBearerES256: the same token unbound, as Bearer.
func BenchmarkCheckHotBearerES256(b *testing.B) { benchDPoP(b, true) }

// BenchmarkES256Verify is one raw ECDSA P-256 verification (crypto/ecdsa),
// the floor of a proof check.
func BenchmarkES256Verify(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(b, err)
	digest := sha256.Sum256([]byte("header.payload"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	require.NoError(b, err)
	b.ReportAllocs()
	start := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := sha256.Sum256([]byte("header.payload"))
		if !ecdsa.VerifyASN1(&key.PublicKey, d[:], sig) {
			b.Fatal("verify")
		}
	}
	b.StopTimer()
	reportCPU(b, start)
}
