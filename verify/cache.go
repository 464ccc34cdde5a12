package verify

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// cacheKey is the SHA-256 of a token: the cache never holds a raw token.
type cacheKey [32]byte

// hashToken returns the SHA-256 of raw. Tokens up to 256 bytes (most opaque
// tokens) are hashed from a stack buffer, without allocating.
func hashToken(raw string) cacheKey {
	var buf [256]byte
	return sha256.Sum256(append(buf[:0], raw...))
}

// lruCache is a bounded, expiring least-recently-used map from token hashes
// to introspection results. One mutex guards it; a hit is a map lookup, a
// clock comparison and a list move.
type lruCache struct {
	mu    sync.Mutex
	size  int
	items map[cacheKey]*list.Element
	order *list.List // front: most recently used
}

type cacheEntry struct {
	key     cacheKey
	val     *introspected
	expires time.Time
}

func newLRUCache(size int) *lruCache {
	return &lruCache{size: size, items: make(map[cacheKey]*list.Element), order: list.New()}
}

// get returns the value stored under k if it has not expired at now. An
// expired entry is dropped.
func (c *lruCache) get(k cacheKey, now time.Time) (*introspected, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.items, k)
		return nil, false
	}
	c.order.MoveToFront(el)
	return e.val, true
}

// put stores v under k until expires, evicting the least recently used
// entries beyond the size bound.
func (c *lruCache) put(k cacheKey, v *introspected, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		e := el.Value.(*cacheEntry)
		e.val, e.expires = v, expires
		c.order.MoveToFront(el)
		return
	}
	c.items[k] = c.order.PushFront(&cacheEntry{key: k, val: v, expires: expires})
	for c.order.Len() > c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*cacheEntry).key)
	}
}

// len returns the number of entries, expired ones included.
func (c *lruCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
