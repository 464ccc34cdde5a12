package dpop

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"
)

// ReplayID identifies one proof in a replay store: SHA-256 of the key
// thumbprint and the jti, so that neither is stored in the clear and two
// clients cannot collide by choosing the same jti.
type ReplayID [sha256.Size]byte

// NewReplayID returns the store key of the proof jti signed by the key with
// thumbprint jkt.
func NewReplayID(jkt, jti string) ReplayID {
	h := sha256.New()
	h.Write([]byte(jkt))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var id ReplayID
	h.Sum(id[:0])
	return id
}

// ReplayStore records proof IDs for the time a proof is acceptable.
type ReplayStore interface {
	// Remember records id for ttl. It returns nil when id was not recorded
	// before, ErrProofReplayed when it was (and has not expired), and an
	// error matching ErrReplayStoreUnavailable when it could not record
	// id: a proof is never accepted unrecorded.
	Remember(ctx context.Context, id ReplayID, ttl time.Duration) error
	// Close releases the store's resources.
	Close() error
}

// OpenReplayStore opens the store named by the dpop.replay_store setting:
// "memory" (or "") for a per-replica MemoryStore with DefaultMemoryCapacity,
// or a redis:// or rediss:// URL for a RedisStore shared by all replicas.
// now is the memory store's clock (nil: time.Now).
func OpenReplayStore(spec string, now func() time.Time) (ReplayStore, error) {
	switch {
	case spec == "" || spec == "memory":
		return NewMemoryStore(DefaultMemoryCapacity, now), nil
	case strings.HasPrefix(spec, "redis://") || strings.HasPrefix(spec, "rediss://"):
		return NewRedisStore(spec)
	}
	return nil, fmt.Errorf("dpop: replay_store must be memory or a redis:// URL")
}
