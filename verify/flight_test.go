package verify

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFlight: callers of a running key share one call; a caller that gives
// up gets its context's error while the call goes on for the others; once
// done, the key starts a new call.
func TestFlight(t *testing.T) {
	var f flight[string, int]
	var runs atomic.Int32
	release := make(chan struct{})
	fn := func() (int, error) {
		n := runs.Add(1)
		<-release
		return int(n), nil
	}
	first := f.do("k", fn)
	require.Same(t, first, f.running("k"))
	assert.Same(t, first, f.do("k", fn), "a second caller joins the running call")
	assert.Nil(t, f.running("other"))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := first.wait(ctx)
	require.ErrorIs(t, err, context.Canceled)

	close(release)
	v, err := first.wait(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	assert.Nil(t, f.running("k"), "a finished call leaves the flight")

	v, err = f.do("k", fn).wait(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2, v, "a later caller starts a new call")
	assert.Equal(t, int32(2), runs.Load())
}

// TestReadCapped: a body up to MaxResponseBody is read whole; one byte more
// is refused, not cut short.
func TestReadCapped(t *testing.T) {
	b, err := ReadCapped(strings.NewReader(strings.Repeat("a", MaxResponseBody)), "JWKS")
	require.NoError(t, err)
	assert.Len(t, b, MaxResponseBody)

	_, err = ReadCapped(strings.NewReader(strings.Repeat("a", MaxResponseBody+1)), "JWKS")
	require.EqualError(t, err, "JWKS larger than 1048576 bytes")

	_, err = ReadCapped(failingReader{}, "metadata")
	require.EqualError(t, err, "reading metadata: broken")
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("broken") }
