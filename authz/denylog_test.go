package authz

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDenyLogLimiter: a burst gets through, the rest is counted and
// reported by the next line allowed once the bucket refills (time is
// injected, never measured).
func TestDenyLogLimiter(t *testing.T) {
	t.Parallel()
	l := NewDenyLogLimiter(10, 3)
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 3 {
		ok, sup := l.Allow(t0)
		require.Truef(t, ok, "line %d of the burst", i)
		require.Zero(t, sup)
	}
	for range 1000 {
		ok, _ := l.Allow(t0)
		require.False(t, ok, "beyond the burst")
	}
	ok, sup := l.Allow(t0.Add(100 * time.Millisecond)) // one token refilled
	require.True(t, ok)
	require.Equal(t, uint64(1000), sup, "the held-back lines are reported once")
	ok, sup = l.Allow(t0.Add(100 * time.Millisecond))
	require.False(t, ok)
	require.Zero(t, sup)
}

// TestDenyLogLimiterConcurrent: under concurrent use, lines written plus
// lines reported as suppressed account for every call.
func TestDenyLogLimiterConcurrent(t *testing.T) {
	t.Parallel()
	l := NewDenyLogLimiter(0, 0) // defaults
	t0 := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	written, reported := 0, uint64(0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				ok, sup := l.Allow(t0)
				mu.Lock()
				if ok {
					written++
					reported += sup
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Equal(t, DefaultDenyLogBurst, written)
	ok, sup := l.Allow(t0.Add(time.Second))
	require.True(t, ok)
	require.Equal(t, uint64(8*500-DefaultDenyLogBurst), reported+sup)
}
