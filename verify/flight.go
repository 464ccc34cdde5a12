package verify

import (
	"context"
	"sync"
)

// flight runs at most one call per key at a time: a caller asking for a key
// whose call is running waits for that call's result instead of starting
// another. Each call runs on its own goroutine, apart from any caller's
// context, so that one caller giving up does not cancel it for the others.
type flight[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*flightCall[V]
}

// flightCall is one call shared by its callers.
type flightCall[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// running returns the call in flight for key, or nil.
func (f *flight[K, V]) running(key K) *flightCall[V] {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[key]
}

// do returns the call in flight for key, starting fn as that call if none
// is. The call leaves the flight once fn has returned, before its callers
// are released: whatever fn stored (a cache entry, a key set) is visible to
// any caller that no longer finds it running.
func (f *flight[K, V]) do(key K, fn func() (V, error)) *flightCall[V] {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.calls[key]; ok {
		return c
	}
	if f.calls == nil {
		f.calls = map[K]*flightCall[V]{}
	}
	c := &flightCall[V]{done: make(chan struct{})}
	f.calls[key] = c
	go func() {
		c.val, c.err = fn()
		f.mu.Lock()
		delete(f.calls, key)
		f.mu.Unlock()
		close(c.done)
	}()
	return c
}

// wait returns the call's result, or ctx's error if ctx ends first.
func (c *flightCall[V]) wait(ctx context.Context) (V, error) {
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}
