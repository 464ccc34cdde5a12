package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// BenchmarkES256Verify is the yardstick: one ES256 signature check of a
// proof, raw (crypto/ecdsa: SHA-256 of the signing input and the verify)
// and through jwx's fast compact path.
func BenchmarkES256Verify(b *testing.B) {
	key := keyFor(b, "ES256").(*ecdsa.PrivateKey)
	proof := makeProof(b, proofSpec{})
	dot := strings.LastIndexByte(proof, '.')
	input := []byte(proof[:dot])
	sig, err := base64.RawURLEncoding.DecodeString(proof[dot+1:])
	if err != nil || len(sig) != 64 {
		b.Fatal("bad signature encoding")
	}
	asn1Sig, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU()
		for b.Loop() {
			h := sha256.Sum256(input)
			if !ecdsa.VerifyASN1(&key.PublicKey, h[:], asn1Sig) {
				b.Fatal("verify failed")
			}
		}
		cpu.report(b)
	})
	b.Run("jws", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU()
		for b.Loop() {
			if _, err := jws.VerifyCompactFast(&key.PublicKey, []byte(proof), jwa.ES256()); err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b)
	})
}

// BenchmarkCheckES256 is one full proof check on the hot path (a fresh
// ES256 proof each request), with the in-memory and the redis store. The
// proofs are minted before the timer starts.
func BenchmarkCheckES256(b *testing.B) {
	jkt := jktOf(b, keyFor(b, "ES256"))
	run := func(b *testing.B, store ReplayStore) {
		c := newTestChecker(b, func(cfg *Config) { cfg.Store = store })
		proofs := make([]string, b.N)
		for i := range proofs {
			proofs[i] = makeProof(b, proofSpec{})
		}
		req := testRequest()
		ctx := context.Background()
		b.ReportAllocs()
		runtime.GC() // the minting garbage is not the check's
		b.ResetTimer()
		cpu := startCPU()
		for i := 0; i < b.N; i++ {
			if err := c.Check(ctx, proofs[i:i+1], req, jkt); err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b)
	}
	b.Run("memory", func(b *testing.B) { run(b, NewMemoryStore(DefaultMemoryCapacity, nil)) })
	b.Run("redis", func(b *testing.B) {
		url, _ := startRedis(b)
		s, err := NewRedisStore(url)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		run(b, s)
	})
}

// BenchmarkReplayStore is the store insert alone.
func BenchmarkReplayStore(b *testing.B) {
	run := func(b *testing.B, s ReplayStore) {
		ids := make([]ReplayID, b.N)
		for i := range ids {
			ids[i] = NewReplayID("jkt", string(rune(i))+base64.RawURLEncoding.EncodeToString(big.NewInt(int64(i)).Bytes()))
		}
		ctx := context.Background()
		b.ReportAllocs()
		runtime.GC() // the minting garbage is not the check's
		b.ResetTimer()
		cpu := startCPU()
		for i := 0; i < b.N; i++ {
			if err := s.Remember(ctx, ids[i], DefaultMaxAge); err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b)
	}
	b.Run("memory", func(b *testing.B) { run(b, NewMemoryStore(DefaultMemoryCapacity, nil)) })
	b.Run("redis", func(b *testing.B) {
		url, _ := startRedis(b)
		s, err := NewRedisStore(url)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		run(b, s)
	})
}

// cpuClock measures the process CPU time (user+system) of a benchmark loop.
// On a shared machine it is steadier than wall time; it counts every
// goroutine of this process (GC, the redis client) but not redis-server.
type cpuClock struct{ start time.Duration }

func startCPU() cpuClock { return cpuClock{start: processCPU()} }

// report adds cpu-ns/op to the benchmark output.
func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(processCPU()-c.start)/float64(b.N), "cpu-ns/op")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
