package dpop

import (
	"context"
	"encoding/binary"
	"sync"
	"time"
)

// DefaultMemoryCapacity bounds a MemoryStore: at 60s proofs this is about
// 17,000 fresh proofs a second, at roughly 100 bytes per entry 100 MB.
const DefaultMemoryCapacity = 1 << 20

// memoryShards is the number of independently locked shards.
const memoryShards = 64

// MemoryStore is a bounded, sharded in-process ReplayStore. Each shard has
// its own lock, so concurrent Checks contend only when their IDs fall in
// the same shard. Entries expire after their ttl; a full shard first drops
// its expired entries and, if still full, refuses to record (fail closed:
// ErrReplayStoreFull) rather than forget a live proof.
type MemoryStore struct {
	now    func() time.Time
	shards [memoryShards]memoryShard
}

type memoryShard struct {
	mu      sync.Mutex
	expires map[ReplayID]int64 // unix nanoseconds
	queue   []queued           // insertion order, for expiry sweeps
	head    int
	limit   int
	_       [40]byte // keep shards on separate cache lines
}

type queued struct {
	id      ReplayID
	expires int64
}

// NewMemoryStore returns a store holding at most capacity live entries
// (rounded up to a multiple of the shard count). now nil means time.Now.
func NewMemoryStore(capacity int, now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	per := (capacity + memoryShards - 1) / memoryShards
	if per < 1 {
		per = 1
	}
	s := &MemoryStore{now: now}
	for i := range s.shards {
		s.shards[i].expires = make(map[ReplayID]int64)
		s.shards[i].limit = per
	}
	return s
}

// Remember implements ReplayStore.
func (s *MemoryStore) Remember(_ context.Context, id ReplayID, ttl time.Duration) error {
	now := s.now().UnixNano()
	sh := &s.shards[binary.LittleEndian.Uint64(id[:8])%memoryShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if exp, ok := sh.expires[id]; ok && exp > now {
		return ErrProofReplayed
	}
	sh.sweep(now)
	if len(sh.expires) >= sh.limit {
		return ErrReplayStoreFull
	}
	exp := now + int64(ttl)
	sh.expires[id] = exp
	sh.queue = append(sh.queue, queued{id: id, expires: exp})
	return nil
}

// sweep drops expired entries from the front of the insertion queue. The
// Checker uses one ttl, so the queue is in expiry order; an entry with a
// shorter ttl behind a longer one waits for it, bounded by the capacity.
func (sh *memoryShard) sweep(now int64) {
	for sh.head < len(sh.queue) && sh.queue[sh.head].expires <= now {
		q := sh.queue[sh.head]
		if sh.expires[q.id] == q.expires {
			delete(sh.expires, q.id)
		}
		sh.queue[sh.head] = queued{}
		sh.head++
	}
	// Compact the queue once its consumed prefix dominates.
	if sh.head > 0 && sh.head >= len(sh.queue)/2 {
		n := copy(sh.queue, sh.queue[sh.head:])
		sh.queue = sh.queue[:n]
		sh.head = 0
	}
}

// Len returns the number of entries held, expired or not, for tests and
// metrics.
func (s *MemoryStore) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.expires)
		sh.mu.Unlock()
	}
	return n
}

// Close implements ReplayStore.
func (s *MemoryStore) Close() error { return nil }
