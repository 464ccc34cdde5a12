package verify

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestLRUCache(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	key := func(s string) cacheKey { return cacheKey(sha256.Sum256([]byte(s))) }
	val := func(sub string) *introspected { return &introspected{id: &Identity{Subject: sub}} }
	tests := []struct {
		name string
		run  func(c *lruCache)
		// want maps a key to the subject it must still hold ("" = absent) at t0.
		want    map[string]string
		wantLen int
	}{
		{
			name: "bound evicts the oldest",
			run: func(c *lruCache) {
				c.put(key("a"), val("a"), t0.Add(time.Hour))
				c.put(key("b"), val("b"), t0.Add(time.Hour))
				c.put(key("c"), val("c"), t0.Add(time.Hour))
			},
			want:    map[string]string{"a": "", "b": "b", "c": "c"},
			wantLen: 2,
		},
		{
			name: "get refreshes recency",
			run: func(c *lruCache) {
				c.put(key("a"), val("a"), t0.Add(time.Hour))
				c.put(key("b"), val("b"), t0.Add(time.Hour))
				c.get(key("a"), t0)
				c.put(key("c"), val("c"), t0.Add(time.Hour))
			},
			want:    map[string]string{"a": "a", "b": "", "c": "c"},
			wantLen: 2,
		},
		{
			name: "put replaces in place",
			run: func(c *lruCache) {
				c.put(key("a"), val("a1"), t0.Add(time.Hour))
				c.put(key("a"), val("a2"), t0.Add(time.Hour))
			},
			want:    map[string]string{"a": "a2"},
			wantLen: 1,
		},
		{
			name:    "expired entries are dropped on get",
			run:     func(c *lruCache) { c.put(key("a"), val("a"), t0); c.put(key("b"), val("b"), t0.Add(time.Nanosecond)) },
			want:    map[string]string{"a": "", "b": "b"},
			wantLen: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newLRUCache(2)
			tc.run(c)
			for k, sub := range tc.want {
				v, ok := c.get(key(k), t0)
				if sub == "" {
					assert.False(t, ok, k)
					continue
				}
				if assert.True(t, ok, k) {
					assert.Equal(t, sub, v.id.Subject)
				}
			}
			assert.Equal(t, tc.wantLen, c.len())
		})
	}
}
