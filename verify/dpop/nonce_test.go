package dpop

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNonceRotation: a nonce is valid in its interval and the next, stale
// after that; Current changes at each interval.
func TestNonceRotation(t *testing.T) {
	now := testNow
	n, err := NewNonces([]byte(strings.Repeat("k", 32)), time.Minute, func() time.Time { return now })
	require.NoError(t, err)
	first := n.Current()
	assert.Equal(t, first, n.Current(), "stable inside an interval")
	require.NoError(t, n.Check(first))

	now = now.Add(time.Minute)
	second := n.Current()
	assert.NotEqual(t, first, second)
	require.NoError(t, n.Check(first), "previous interval still accepted")
	require.NoError(t, n.Check(second))

	now = now.Add(time.Minute)
	require.ErrorIs(t, n.Check(first), ErrNonceStale)
	require.NoError(t, n.Check(second))

	// A nonce from the future (another replica's clock far ahead) is stale.
	future, err := NewNonces([]byte(strings.Repeat("k", 32)), time.Minute, func() time.Time { return now.Add(10 * time.Minute) })
	require.NoError(t, err)
	require.ErrorIs(t, n.Check(future.Current()), ErrNonceStale)

	// A replica with the same key accepts the nonce; another key does not.
	same, err := NewNonces([]byte(strings.Repeat("k", 32)), time.Minute, func() time.Time { return now })
	require.NoError(t, err)
	require.NoError(t, same.Check(n.Current()))
	other, err := NewNonces([]byte(strings.Repeat("x", 32)), time.Minute, func() time.Time { return now })
	require.NoError(t, err)
	require.ErrorIs(t, other.Check(n.Current()), ErrNonceInvalid)
}

func TestNonceCheckInput(t *testing.T) {
	n, err := NewNonces(nil, time.Minute, nil)
	require.NoError(t, err)
	cur := n.Current()
	flipped := []byte(cur)
	flipped[len(flipped)-2] ^= 1
	for _, tt := range []struct {
		in   string
		want error
	}{
		{"", ErrNonceMissing},
		{"x", ErrNonceInvalid},
		{cur + "A", ErrNonceInvalid},
		{string(flipped), ErrNonceInvalid},
		{strings.Repeat("!", len(cur)), ErrNonceInvalid},
	} {
		assert.ErrorIs(t, n.Check(tt.in), tt.want, tt.in)
	}
}

func TestNewNoncesConfig(t *testing.T) {
	_, err := NewNonces(make([]byte, 31), time.Minute, nil)
	assert.Error(t, err)
	_, err = NewNonces(nil, 0, nil)
	assert.Error(t, err)
}
