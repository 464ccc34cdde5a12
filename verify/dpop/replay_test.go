package dpop

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMemoryStore: first sighting passes, a repeat is a replay until the
// entry expires.
func TestMemoryStore(t *testing.T) {
	now := testNow
	s := NewMemoryStore(1024, func() time.Time { return now })
	ctx := context.Background()
	id := NewReplayID("jkt", "jti")

	require.NoError(t, s.Remember(ctx, id, time.Minute))
	require.ErrorIs(t, s.Remember(ctx, id, time.Minute), ErrProofReplayed)
	require.NoError(t, s.Remember(ctx, NewReplayID("jkt", "jti2"), time.Minute))
	require.NoError(t, s.Remember(ctx, NewReplayID("jkt2", "jti"), time.Minute))

	now = now.Add(time.Minute - time.Nanosecond)
	require.ErrorIs(t, s.Remember(ctx, id, time.Minute), ErrProofReplayed)
	now = now.Add(time.Nanosecond)
	require.NoError(t, s.Remember(ctx, id, time.Minute), "expired entry is gone")
	require.ErrorIs(t, s.Remember(ctx, id, time.Minute), ErrProofReplayed)
}

// TestReplayIDSeparatesFields: the jkt/jti boundary cannot be shifted.
func TestReplayIDSeparatesFields(t *testing.T) {
	assert.NotEqual(t, NewReplayID("ab", "c"), NewReplayID("a", "bc"))
	assert.Equal(t, NewReplayID("a", "b"), NewReplayID("a", "b"))
}

// TestMemoryStoreBounded: a full store refuses to record (fail closed) and
// recovers once entries expire.
func TestMemoryStoreBounded(t *testing.T) {
	now := testNow
	s := NewMemoryStore(memoryShards, func() time.Time { return now }) // one entry per shard
	ctx := context.Background()
	full := 0
	for i := 0; i < 10*memoryShards; i++ {
		err := s.Remember(ctx, NewReplayID("k", fmt.Sprint(i)), time.Minute)
		if err != nil {
			require.ErrorIs(t, err, ErrReplayStoreFull)
			require.ErrorIs(t, err, ErrReplayStoreUnavailable)
			full++
		}
	}
	assert.Equal(t, memoryShards, s.Len())
	assert.Equal(t, 9*memoryShards, full)

	now = now.Add(time.Minute)
	for i := 100; i < 100+10*memoryShards; i++ {
		err := s.Remember(ctx, NewReplayID("k", fmt.Sprint(i)), time.Minute)
		if err != nil {
			require.ErrorIs(t, err, ErrReplayStoreFull)
		}
	}
	assert.Equal(t, memoryShards, s.Len(), "expired entries were swept")
}

// TestMemoryStoreConcurrent: under -race, many goroutines racing on the
// same IDs; each ID is accepted exactly once.
func TestMemoryStoreConcurrent(t *testing.T) {
	s := NewMemoryStore(1<<16, nil)
	const ids, workers = 500, 8
	var accepted atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < ids; i++ {
				err := s.Remember(context.Background(), NewReplayID("k", fmt.Sprint(i)), time.Minute)
				if err == nil {
					accepted.Add(1)
				} else if err != ErrProofReplayed {
					t.Errorf("unexpected %v", err)
				}
			}
		}()
	}
	wg.Wait()
	assert.EqualValues(t, ids, accepted.Load())
}

// TestRedisStore runs against a real redis-server.
func TestRedisStore(t *testing.T) {
	url, kill := startRedis(t)
	ctx := context.Background()
	a, err := NewRedisStore(url)
	require.NoError(t, err)
	defer a.Close()
	b, err := NewRedisStore(url) // another replica
	require.NoError(t, err)
	defer b.Close()

	id := NewReplayID("jkt", "jti")
	require.NoError(t, a.Remember(ctx, id, time.Minute))
	require.ErrorIs(t, a.Remember(ctx, id, time.Minute), ErrProofReplayed)
	require.ErrorIs(t, b.Remember(ctx, id, time.Minute), ErrProofReplayed, "shared across replicas")
	require.NoError(t, b.Remember(ctx, NewReplayID("jkt", "jti2"), time.Minute))

	// The entry carries the ttl (read back, not waited for).
	key := redisKeyPrefix + b64(id[:])
	pttl, err := a.client.PTTL(ctx, key).Result()
	require.NoError(t, err)
	assert.Greater(t, pttl, time.Duration(0))
	assert.LessOrEqual(t, pttl, time.Minute)

	// Redis gone: fail closed, unavailable.
	kill()
	err = a.Remember(ctx, NewReplayID("jkt", "jti3"), time.Minute)
	require.ErrorIs(t, err, ErrReplayStoreDown)
	require.ErrorIs(t, err, ErrReplayStoreUnavailable)
	assert.True(t, asError(t, err).Unavailable())
	require.ErrorIs(t, a.Ping(ctx), ErrReplayStoreUnavailable)
}

// TestCheckReplayAcrossReplicas: two checkers sharing one redis; a proof
// accepted by one is a replay at the other.
func TestCheckReplayAcrossReplicas(t *testing.T) {
	url, _ := startRedis(t)
	replica := func() *Checker {
		s, err := OpenReplayStore(url, nil)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return newTestChecker(t, func(c *Config) { c.Store = s })
	}
	a, b := replica(), replica()
	jkt := jktOf(t, keyFor(t, "ES256"))
	p := makeProof(t, proofSpec{})
	require.NoError(t, a.Check(context.Background(), []string{p}, testRequest(), jkt))
	require.ErrorIs(t, b.Check(context.Background(), []string{p}, testRequest(), jkt), ErrProofReplayed)
	require.ErrorIs(t, a.Check(context.Background(), []string{p}, testRequest(), jkt), ErrProofReplayed)
}

func TestOpenReplayStore(t *testing.T) {
	for _, spec := range []string{"", "memory"} {
		s, err := OpenReplayStore(spec, nil)
		require.NoError(t, err)
		assert.IsType(t, &MemoryStore{}, s)
	}
	s, err := OpenReplayStore("redis://127.0.0.1:1/3", nil)
	require.NoError(t, err)
	assert.IsType(t, &RedisStore{}, s)
	assert.Equal(t, 3, s.(*RedisStore).client.Options().DB)
	require.NoError(t, s.Close())
	for _, bad := range []string{"mem", "http://x", "redis://:secret@127.0.0.1:1/notadb"} {
		_, err := OpenReplayStore(bad, nil)
		require.Error(t, err, bad)
		assert.NotContains(t, err.Error(), "secret")
	}
}
