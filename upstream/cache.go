package upstream

import (
	"crypto/sha256"
	"sync"
	"time"
)

// TokenHash is the SHA-256 of a client token: the caches never hold a raw
// token.
type TokenHash [32]byte

// HashToken returns the SHA-256 of a raw token. Tokens up to 1 KiB (most
// JWTs) are hashed from a stack buffer, without allocating.
func HashToken(raw string) TokenHash {
	if len(raw) <= 1024 {
		var buf [1024]byte
		return sha256.Sum256(append(buf[:0], raw...))
	}
	return sha256.Sum256([]byte(raw))
}

// cacheKey is a token hash with what else the entry depends on (the route
// and audience of an assertion, the audience and scopes of an exchange).
type cacheKey struct {
	token TokenHash
	sub   string
}

type cacheEntry[V any] struct {
	val V
	// until is when the entry stops being served.
	until time.Time
}

// cacheShards is the number of independently locked parts of a cache.
const cacheShards = 32

// shardedCache is a bounded, expiring map from cache keys to values, split
// into shards by the token hash so that concurrent requests rarely share a
// lock. A lookup takes one shard's read lock; a store takes its write lock
// and, when the shard is full, drops an expired entry or else an arbitrary
// one. A nil *shardedCache is a disabled cache.
type shardedCache[V any] struct {
	perShard int
	shards   [cacheShards]cacheShard[V]
}

type cacheShard[V any] struct {
	mu sync.RWMutex
	m  map[cacheKey]cacheEntry[V]
	_  [40]byte // keeps neighbouring shards' locks off one cache line
}

// newShardedCache returns a cache of at most about size entries (size
// rounded up to a multiple of the shard count), or nil when size is 0 or
// less.
func newShardedCache[V any](size int) *shardedCache[V] {
	if size <= 0 {
		return nil
	}
	c := &shardedCache[V]{perShard: cachePerShard(size)}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]cacheEntry[V])
	}
	return c
}

func (c *shardedCache[V]) shard(k cacheKey) *cacheShard[V] {
	return &c.shards[int(k.token[0])%cacheShards]
}

// get returns the value stored under k if it is still served at now.
func (c *shardedCache[V]) get(k cacheKey, now time.Time) (V, bool) {
	var zero V
	if c == nil {
		return zero, false
	}
	s := c.shard(k)
	s.mu.RLock()
	e, ok := s.m[k]
	s.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return zero, false
	}
	return e.val, true
}

// put stores v under k until until. A full shard first drops an expired
// entry among the few it looks at, else the first one it sees.
func (c *shardedCache[V]) put(k cacheKey, v V, until, now time.Time) {
	if c == nil || !now.Before(until) {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; !ok && len(s.m) >= c.perShard {
		var victim cacheKey
		seen := 0
		for key, e := range s.m {
			if seen == 0 {
				victim = key
			}
			if !now.Before(e.until) {
				victim = key
				break
			}
			if seen++; seen >= 8 {
				break
			}
		}
		delete(s.m, victim)
	}
	s.m[k] = cacheEntry[V]{val: v, until: until}
}

// len returns the number of entries, expired ones included.
func (c *shardedCache[V]) len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
